// The front page: counts, the throughput chart, the create form, and the job list, newest first, live.
import { describe, graphql } from './api.js';
import { throughputChart } from './chart.js';
import { fill, h, progressBar, STATUSES, time } from './dom.js';
import { inputEditor } from './schema-form.js';

const PAGE_SIZE = 20;
// Counts and the chart are polled, not recomputed per change: a busy queue changes many times a second, and
// jobStats is cheap only when it is not asked for on every one of them.
const STATS_EVERY_MS = 5000;
const CHART_EVERY_MS = 30_000;

/** Renders the list view into main; returns its cleanup (stops timers and feeds). */
export function showList(main, client, kinds) {
  const stop = new AbortController();
  const filters = { status: '', kind: '' };
  const stats = h(
    'section',
    { 'aria-labelledby': 'counts-h' },
    h('h2', { id: 'counts-h' }, 'Counts'),
    h('p', { className: 'muted' }, 'Loading…'),
  );
  const chart = h('section', { 'aria-labelledby': 'chart-h' }, h('h2', { id: 'chart-h' }, 'Last hour'));
  const list = h('section', { 'aria-labelledby': 'jobs-h' });
  fill(main, h('div', { className: 'grid' }, stats, createForm(kinds)), chart, list);
  everyWhile(stop.signal, STATS_EVERY_MS, () => refreshStats(stats));
  everyWhile(stop.signal, CHART_EVERY_MS, () => refreshChart(chart));
  const jobs = jobList(list, client, kinds, filters);
  return () => {
    stop.abort();
    jobs.stop();
  };
}

function everyWhile(signal, ms, run) {
  const tick = async () => {
    if (signal.aborted) return;
    await run();
    if (!signal.aborted) setTimeout(tick, ms);
  };
  void tick();
}

async function refreshStats(section) {
  try {
    const { jobStats } = await graphql(
      'query DashboardStats { jobStats(finishedWithinMinutes: 60) { byStatus { status count } byKind { kind status count } oldestDueQueuedAgeSeconds } }',
    );
    const byKind = new Map();
    for (const { kind, status, count } of jobStats.byKind) {
      if (!byKind.has(kind)) byKind.set(kind, {});
      byKind.get(kind)[status] = count;
    }
    fill(
      section,
      h('h2', { id: 'counts-h' }, 'Counts'),
      h(
        'ul',
        { className: 'counts', 'aria-label': 'jobs by status' },
        jobStats.byStatus.map(({ status, count }) => h('li', {}, h('span', { className: `n status-${status}` }, count), status)),
      ),
      h(
        'p',
        { className: 'muted' },
        'Queued and running: all now; finished: the last 60 minutes.',
        jobStats.oldestDueQueuedAgeSeconds === null ? '' : ` Oldest due job waiting ${Math.round(jobStats.oldestDueQueuedAgeSeconds)} s.`,
      ),
      byKind.size === 0
        ? null
        : h(
            'div',
            { className: 'table-wrap' },
            h(
              'table',
              { 'aria-label': 'jobs by kind and status' },
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  h('th', { scope: 'col' }, 'kind'),
                  STATUSES.map((s) => h('th', { scope: 'col' }, s.toLowerCase())),
                ),
              ),
              h(
                'tbody',
                {},
                [...byKind].map(([kind, counts]) =>
                  h(
                    'tr',
                    {},
                    h('th', { scope: 'row' }, kind),
                    STATUSES.map((s) => h('td', {}, counts[s] ?? 0)),
                  ),
                ),
              ),
            ),
          ),
    );
  } catch (error) {
    fill(section, h('h2', { id: 'counts-h' }, 'Counts'), h('p', { className: 'error', role: 'alert' }, describe(error)));
  }
}

async function refreshChart(section) {
  try {
    const { jobThroughput } = await graphql(
      'query DashboardThroughput { jobThroughput(minutes: 60) { start completed failed cancelled queueDepth } }',
    );
    fill(section, h('h2', { id: 'chart-h' }, 'Last hour'), throughputChart(jobThroughput));
  } catch (error) {
    fill(section, h('h2', { id: 'chart-h' }, 'Last hour'), h('p', { className: 'error', role: 'alert' }, describe(error)));
  }
}

function createForm(kinds) {
  const kind = h(
    'select',
    { name: 'kind', required: true },
    kinds.map((k) => h('option', { value: k.name }, k.name)),
  );
  const outcome = h('p', { role: 'status', 'aria-live': 'polite' });
  // The kind's input as JSON Schema (Query.kinds): a form when its fields are simple, else raw JSON to write
  // against it; the server checks the input either way.
  const schema = h('pre');
  const editorSlot = h('div', { className: 'editor-slot' });
  let editor = null;
  const showKind = () => {
    const chosen = kinds.find((k) => k.name === kind.value);
    fill(schema, chosen?.inputSchema ? JSON.stringify(chosen.inputSchema, null, 2) : 'This kind publishes no input schema.');
    editor = inputEditor(chosen?.inputSchema);
    fill(editorSlot, editor.element);
    fill(outcome);
  };
  kind.addEventListener('change', showKind);
  showKind();
  const submit = async (event) => {
    event.preventDefault();
    let parsed;
    try {
      parsed = editor.value();
    } catch (error) {
      fill(outcome, h('span', { className: 'error' }, `The input is not JSON: ${error.message}`));
      return;
    }
    try {
      const { createJob } = await graphql('mutation DashboardCreateJob($input: CreateJobInput!) { createJob(input: $input) { id } }', {
        input: { kind: kind.value, input: parsed },
      });
      fill(outcome, 'Created ', h('a', { href: `#/jobs/${encodeURIComponent(createJob.id)}` }, createJob.id));
    } catch (error) {
      fill(outcome, h('span', { className: 'error' }, describe(error)));
    }
  };
  return h(
    'section',
    { 'aria-labelledby': 'create-h' },
    h('h2', { id: 'create-h' }, 'Create a job'),
    h(
      'form',
      { className: 'create-form', onsubmit: submit },
      h('label', {}, 'Kind', kind),
      editorSlot,
      h('div', {}, h('button', { type: 'submit', className: 'primary' }, 'Create job')),
    ),
    outcome,
    h('details', {}, h('summary', {}, 'Input schema of this kind'), schema),
  );
}

/** The filters, the table, the pager and the live feed that keeps the shown page current. */
function jobList(section, client, kinds, filters) {
  const body = h('tbody');
  const pageInfo = h('span', { className: 'muted' });
  const failure = h('p', { className: 'error', role: 'alert' });
  const rows = new Map();
  let newest = ''; // createdAt of the newest job shown: a feed event for a newer one is a new job
  let cursors = [null]; // the cursor of each page shown so far: back pops one
  let hasNext = false;
  let feed = null;
  const newer = h(
    'button',
    {
      type: 'button',
      onclick: () => {
        cursors.pop();
        load();
      },
    },
    'Newer',
  );
  const older = h('button', { type: 'button', onclick: () => load(nextCursor) }, 'Older');
  let nextCursor = null;

  let loads = 0;
  const load = async (after) => {
    if (after) cursors.push(after);
    const cursor = cursors.at(-1);
    // Only the latest load may fill the table: an earlier one (a filter changed quickly) can answer last.
    const current = ++loads;
    try {
      const page = (
        await client
          .listJobs({
            status: filters.status || undefined,
            kind: filters.kind || undefined,
            pageSize: PAGE_SIZE,
            after: cursor ?? undefined,
          })
          .next()
      ).value;
      if (current !== loads) return;
      rows.clear();
      newest = page.jobs[0]?.createdAt ?? '';
      fill(
        body,
        page.jobs.map((job) => row(job, rows)),
      );
      if (page.jobs.length === 0) fill(body, h('tr', {}, h('td', { colspan: 6, className: 'muted' }, 'No jobs.')));
      hasNext = page.hasNextPage;
      nextCursor = page.endCursor;
      newer.disabled = cursors.length === 1;
      older.disabled = !hasNext;
      fill(pageInfo, `Page ${cursors.length}`);
      fill(failure);
    } catch (error) {
      fill(failure, describe(error));
    }
  };

  const watch = () => {
    feed?.abort();
    feed = new AbortController();
    const signal = feed.signal;
    (async () => {
      // Not filtered on status: the feed's status filter is the status after the change, so a shown QUEUED row
      // would never hear that it became RUNNING. New jobs are checked against the status filter here instead.
      const updates = client.watchJobs({
        kind: filters.kind || undefined,
        signal,
        onReconnect: () => load(),
      });
      try {
        for await (const job of updates) {
          if (signal.aborted) break;
          const shown = rows.get(job.id);
          if (shown) shown.update(job);
          else if (cursors.length === 1 && job.createdAt > newest && (!filters.status || job.status === filters.status)) {
            // A new job belongs at the top of the first page; the page keeps its size.
            body.querySelector('td[colspan]')?.parentElement.remove();
            newest = job.createdAt;
            body.prepend(row(job, rows));
            while (body.rows.length > PAGE_SIZE) {
              rows.delete(body.rows[body.rows.length - 1].dataset.id);
              body.rows[body.rows.length - 1].remove();
            }
          }
        }
      } catch (error) {
        if (!signal.aborted) fill(failure, `Live updates stopped: ${describe(error)}`);
      }
    })();
  };

  const restart = () => {
    cursors = [null];
    load();
    watch();
  };
  const status = h(
    'select',
    {
      name: 'status',
      onchange: (e) => {
        filters.status = e.target.value;
        restart();
      },
    },
    h('option', { value: '' }, 'all'),
    STATUSES.map((s) => h('option', { value: s }, s.toLowerCase())),
  );
  const kind = h(
    'select',
    {
      name: 'kind',
      onchange: (e) => {
        filters.kind = e.target.value;
        restart();
      },
    },
    h('option', { value: '' }, 'all'),
    kinds.map((k) => h('option', { value: k.name }, k.name)),
  );
  const search = h('input', { name: 'id', type: 'search', placeholder: 'job id', autocomplete: 'off' });
  const find = (event) => {
    event.preventDefault();
    const id = search.value.trim();
    if (id) location.hash = `#/jobs/${encodeURIComponent(id)}`;
  };

  fill(
    section,
    h('h2', { id: 'jobs-h' }, 'Jobs'),
    h(
      'div',
      { className: 'filters' },
      h('label', {}, 'Status', status),
      h('label', {}, 'Kind', kind),
      h(
        'form',
        { className: 'row', role: 'search', onsubmit: find },
        h('label', {}, 'Find by id', search),
        h('button', { type: 'submit' }, 'Open'),
      ),
    ),
    failure,
    h(
      'div',
      { className: 'table-wrap' },
      h(
        'table',
        { 'aria-label': 'jobs, newest first' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col' }, 'id'),
            h('th', { scope: 'col' }, 'kind'),
            h('th', { scope: 'col' }, 'status'),
            h('th', { scope: 'col' }, 'progress'),
            h('th', { scope: 'col', className: 'wide' }, 'attempt'),
            h('th', { scope: 'col', className: 'wide' }, 'created'),
          ),
        ),
        body,
      ),
    ),
    h('div', { className: 'pager' }, newer, older, pageInfo),
  );
  restart();
  return { stop: () => feed?.abort() };
}

/** One job's row; it updates itself in place when a newer revision comes. */
function row(job, rows) {
  const status = h('td', {});
  const progress = h('td', {});
  const attempt = h('td', { className: 'wide' });
  let revision = 0;
  const update = (next) => {
    if (next.revision <= revision) return;
    revision = next.revision;
    fill(status, h('span', { className: `status status-${next.status}` }, next.status));
    fill(progress, progressBar(next.progress, `progress of ${next.id}`));
    fill(attempt, `${next.attempt}/${next.maxAttempts}`);
  };
  const tr = h(
    'tr',
    { 'data-id': job.id },
    h('td', { className: 'id' }, h('a', { href: `#/jobs/${encodeURIComponent(job.id)}` }, job.id)),
    h('td', {}, job.kind),
    status,
    progress,
    attempt,
    h('td', { className: 'wide' }, time(job.createdAt)),
  );
  update(job);
  rows.set(job.id, { update });
  return tr;
}
