import { readdirSync, readFileSync } from 'node:fs';

// Where the CPU went during a measurement, from Linux's /proc: the server processes, this process (the load
// generator), PostgreSQL's processes on this machine, and everything else. "Others" well above zero means
// something else competed for the CPUs (a test run, a build) and the figures are low. Null where /proc is missing.

const TICKS_PER_SECOND = 100; // USER_HZ, 100 on every mainstream Linux build

export type CpuSample = {
  at: number;
  servers: Map<number, number>;
  postgres: Map<number, number>;
  self: number;
  machineBusy: number | null;
};

/** CPU seconds a process has used so far (user + system), or null when it is gone. */
function processCpuSeconds(pid: number | string): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces: state is the first,
    // utime (field 14) the 12th and stime (field 15) the 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/**
 * CPU seconds so far of this machine's PostgreSQL processes that work for `database`: its backends and the
 * server's own background processes. Backends of other databases (a test run, say) count as "others".
 */
function postgresCpuSeconds(database: string): Map<number, number> {
  const found = new Map<number, number>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
      // A backend's title is "postgres: <cluster>: <user> <database> <host>(<port>) <activity>".
      const title = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const backend = /^postgres: (?:.*?: )?\S+ (\S+) (?:\S+\(\d+\)|\[local\])/.exec(title);
      if (backend && backend[1] !== database) continue;
    } catch {
      continue;
    }
    const seconds = processCpuSeconds(entry);
    if (seconds !== null) found.set(Number(entry), seconds);
  }
  return found;
}

/** Busy CPU seconds of the whole machine (all cores) so far, or null. */
function machineBusySeconds(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = line.trim().split(/\s+/).slice(1).map(Number);
    return (user + nice + system + irq + softirq) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** `database`: the database whose PostgreSQL backends count as PostgreSQL's share (others count as others). */
export function sampleCpu(serverPids: readonly number[], database: string): CpuSample {
  const servers = new Map<number, number>();
  for (const pid of serverPids) {
    const seconds = processCpuSeconds(pid);
    if (seconds !== null) servers.set(pid, seconds);
  }
  const self = process.cpuUsage();
  return {
    at: performance.now(),
    servers,
    postgres: postgresCpuSeconds(database),
    self: (self.user + self.system) / 1e6,
    machineBusy: machineBusySeconds(),
  };
}

export type CpuShare = {
  /** Percent of one core used by the server processes together. */
  serverPercent: number | null;
  /** Percent of one core used by this process (the load generator). */
  benchPercent: number;
  /** Percent of one core used by PostgreSQL on this machine for the benchmark's database (backends that ended meanwhile are missed). */
  postgresPercent: number;
  /** Percent of one core used by everything else, the kernel's interrupt work included. */
  othersPercent: number | null;
};

function used(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  // A process that started in between counts whole: it started during the measurement.
  for (const [pid, end] of after) total += end - (before.get(pid) ?? 0);
  return total;
}

export function cpuShare(before: CpuSample, after: CpuSample): CpuShare {
  const seconds = (after.at - before.at) / 1000;
  const server = before.servers.size > 0 && after.servers.size === before.servers.size ? used(before.servers, after.servers) : null;
  const bench = after.self - before.self;
  const postgres = used(before.postgres, after.postgres);
  const machine = before.machineBusy !== null && after.machineBusy !== null ? after.machineBusy - before.machineBusy : null;
  const others = machine === null ? null : Math.max(0, machine - (server ?? 0) - bench - postgres);
  const percent = (value: number) => (100 * value) / seconds;
  return {
    serverPercent: server === null ? null : percent(server),
    benchPercent: percent(bench),
    postgresPercent: percent(postgres),
    othersPercent: others === null ? null : percent(others),
  };
}

export function formatCpuShare(share: CpuShare): string {
  const p = (value: number | null) => (value === null ? '?' : `${Math.round(value)}%`);
  const parts = [
    share.serverPercent === null ? null : `server ${p(share.serverPercent)}`,
    `bench ${p(share.benchPercent)}`,
    `PostgreSQL ${p(share.postgresPercent)}`,
    `others ${p(share.othersPercent)}`,
  ];
  return `CPU (100% = 1 core): ${parts.filter((part) => part !== null).join(', ')}`;
}
