import { echo } from './echo.ts';
import { fail } from './fail.ts';
import { flaky } from './flaky.ts';
import { sleep } from './sleep.ts';

/** The built-in kinds for trying jobql out and for its tests: `npm start` runs them; a library user asks for them. */
export const demoKinds = [echo, sleep, fail, flaky] as const;
