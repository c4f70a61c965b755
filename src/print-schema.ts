import { writeFileSync } from 'node:fs';
import { printSortedSchema } from './graphql/schema.ts';

// `npm run schema`: writes the schema the code builds to schema.graphql (a test fails while they differ).
writeFileSync(new URL('../schema.graphql', import.meta.url), printSortedSchema());
