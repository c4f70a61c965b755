// Moved into server-process.ts (one helper spawns src/main.ts); kept so that older imports still work.
export { type FinishedProcess, runServerToExit } from './server-process.ts';
