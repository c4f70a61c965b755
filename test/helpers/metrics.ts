import { expect } from '@jest/globals';

/** One scrape of GET /metrics, parsed: every sample by its name and labels (label order does not matter). */
export type Scrape = { text: string; value: (name: string, labels?: Record<string, string>) => number; series: (name: string) => string[] };

const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;

function keyOf(name: string, labels: Record<string, string>): string {
  const pairs = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  return `${name}{${pairs.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;
}

export async function scrape(baseUrl: string, headers: Record<string, string> = {}): Promise<Scrape> {
  const response = await fetch(`${baseUrl}/metrics`, { headers });
  const text = await response.text();
  expect(response.status).toBe(200);
  const samples = new Map<string, number>();
  const byName = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const match = sampleLine.exec(line);
    if (!match) continue;
    const [, name = '', labelText = '', raw = ''] = match;
    const labels: Record<string, string> = {};
    for (const pair of labelText.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] ?? ''] = pair[2] ?? '';
    const key = keyOf(name, labels);
    samples.set(key, Number(raw));
    byName.set(name, [...(byName.get(name) ?? []), key]);
  }
  return {
    text,
    // A series that has not been recorded yet counts as 0, as Prometheus' increase() would see it; a metric
    // that is not there at all is an error, so that a check for 0 cannot pass on a metric that was removed.
    value: (name, labels = {}) => {
      if (!byName.has(name) && !text.includes(`# TYPE ${name.replace(/_(bucket|sum|count)$/, '')} `)) {
        throw new Error(`no metric ${name} in the scrape`);
      }
      return samples.get(keyOf(name, labels)) ?? 0;
    },
    series: (name) => byName.get(name) ?? [],
  };
}
