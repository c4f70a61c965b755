import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

// Sums a V8 CPU profile (`node --cpu-prof`) by where the code comes from: each npm package, each folder of
// jobql's src/, Node's own modules, the garbage collector and V8 itself. Only the samples inside a window of
// CLOCK_MONOTONIC microseconds count (V8's profile timestamps and process.hrtime share that clock on Linux), so
// that a process's startup and shutdown stay out of a measurement's figures. Native functions (a socket's writev,
// a Buffer copy) and Node's own modules count for the package that called them: `pg` includes the socket writes of
// its queries; what Node runs on its own (a socket's data arriving) stays `node: …`. The heaviest native functions
// are listed apart as well. A sample counts as one sampling interval, not as the time since the previous sample:
// on a busy machine a descheduled process resumes at a syscall's return (a socket write that woke PostgreSQL),
// and the wall time of the gap would be charged to that syscall.

type ProfileNode = { id: number; callFrame: { functionName: string; url: string }; children?: number[] };
type CpuProfile = { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] };

export type ProfileShare = { category: string; ms: number };

/** The part of the code a profile node belongs to, for a newcomer to read: `pg`, `graphql`, `jobql src/jobs`, … */
function categoryOf(node: ProfileNode, parentOf: Map<number, ProfileNode>): string {
  const { url, functionName } = node.callFrame;
  if (url === '') {
    if (functionName === '(garbage collector)') return 'V8: garbage collector';
    if (functionName === '(idle)') return '(idle)';
    if (functionName === '(program)') return 'V8: (program) compile, IC, native';
    const parent = parentOf.get(node.id);
    return parent && parent.callFrame.functionName !== '(root)' ? categoryOf(parent, parentOf) : `native: ${functionName || 'anonymous'}`;
  }
  if (url.startsWith('node:')) {
    for (let up = parentOf.get(node.id); up; up = parentOf.get(up.id)) {
      if (up.callFrame.url !== '' && !up.callFrame.url.startsWith('node:')) return categoryOf(up, parentOf);
    }
    const module = url.slice('node:'.length).replace(/^internal\//, '');
    return `node: ${module.split('/')[0] ?? module}`;
  }
  const packages = url.split('/node_modules/');
  if (packages.length > 1) {
    const [scopeOrName = '?', name = ''] = (packages.at(-1) ?? '').split('/');
    return scopeOrName.startsWith('@') ? `${scopeOrName}/${name}` : scopeOrName;
  }
  const src = /\/src\/([^/]+)(\/|$)/.exec(url);
  if (src) return `jobql src/${(src[1] ?? '').replace(/\.ts$/, '')}`;
  return 'other';
}

/** Self time per category in ms within [fromUs, toUs] (CLOCK_MONOTONIC µs), largest first; idle left out. */
export function summarizeProfile(
  file: string,
  fromUs: number,
  toUs: number,
): { shares: ProfileShare[]; natives: ProfileShare[]; busyMs: number; idleMs: number } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const parentOf = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node);
  const byId = new Map(profile.nodes.map((node) => [node.id, categoryOf(node, parentOf)]));
  const nativeName = new Map(
    profile.nodes
      .filter((node) => node.callFrame.url === '' && !node.callFrame.functionName.startsWith('('))
      .map((node) => [node.id, node.callFrame.functionName || 'anonymous']),
  );
  const totals = new Map<string, number>();
  const nativeTotals = new Map<string, number>();
  const interval = [...profile.timeDeltas].sort((a, b) => a - b)[Math.floor(profile.timeDeltas.length / 2)] ?? 1000;
  let at = profile.startTime;
  for (const [i, id] of profile.samples.entries()) {
    at += profile.timeDeltas[i] ?? 0;
    if (at < fromUs || at > toUs) continue;
    const span = interval;
    const category = byId.get(id) ?? '?';
    totals.set(category, (totals.get(category) ?? 0) + span / 1000);
    const native = nativeName.get(id);
    if (native) nativeTotals.set(native, (nativeTotals.get(native) ?? 0) + span / 1000);
  }
  const idleMs = totals.get('(idle)') ?? 0;
  totals.delete('(idle)');
  const sorted = (map: Map<string, number>) => [...map].map(([category, ms]) => ({ category, ms })).sort((a, b) => b.ms - a.ms);
  const shares = sorted(totals);
  return { shares, natives: sorted(nativeTotals), busyMs: shares.reduce((sum, share) => sum + share.ms, 0), idleMs };
}

/** The .cpuprofile files in `dir` that were not there before (`known`). */
export function newProfiles(dir: string, known: ReadonlySet<string>): string[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.cpuprofile') && !known.has(name))
    .map((name) => path.join(dir, name));
}

export const monotonicMicroseconds = () => Number(process.hrtime.bigint() / 1000n);
