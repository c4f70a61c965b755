// The one sql tag of the project (slonik's), so that every module builds queries the same way.
export { sql } from 'slonik';
