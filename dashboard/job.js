// A job's page (#/jobs/ID): its state, updated live through watchJob, its history from the event log, and
// the cancel and retry actions.
import { describe, graphql } from './api.js';
import { FINAL, fill, h, json, progressBar, time } from './dom.js';

const HISTORY = `query DashboardJobHistory($id: ID!) {
  job(id: $id) { id history(first: 100) { startsAtRevision hasNextPage events { revision at status progress attempt lastError { code message } } } }
}`;

/** Renders the job page into main; returns its cleanup (ends the watch). */
export function showJob(main, client, id) {
  const stop = new AbortController();
  const heading = h('h1', { tabindex: -1 }, `Job ${id}`);
  const facts = h('div');
  const actions = h('div', { className: 'actions' });
  const outcome = h('p', { role: 'status', 'aria-live': 'polite' });
  const historyBody = h('tbody');
  const historyNote = h('p', { className: 'muted' });
  let lastRevision = 0;
  let job = null;
  let watching = false;

  // The watch starts with the job as it is now (or after the revision shown), then every change; it ends after
  // a final state.
  const watch = async () => {
    if (watching) return;
    watching = true;
    let again = false;
    try {
      for await (const state of client.watchJob(id, { signal: stop.signal, afterRevision: job?.revision })) show(state);
      // A retry that landed while this watch was ending left a live job behind it: follow that one too.
      again = !stop.signal.aborted && job !== null && !FINAL.has(job.status);
    } catch (error) {
      if (!stop.signal.aborted) fill(outcome, h('span', { className: 'error' }, describe(error)));
    } finally {
      watching = false;
    }
    if (again) void watch();
  };

  const act = (label, run) =>
    h(
      'button',
      {
        type: 'button',
        onclick: async (event) => {
          event.currentTarget.disabled = true;
          try {
            const next = await run(id);
            fill(outcome, `${label}: the job is ${next.status}.`);
            show(next);
            // A retried job lives again: the watch, which ended at the final state, starts over after it.
            if (!FINAL.has(next.status)) void watch();
          } catch (error) {
            fill(outcome, h('span', { className: 'error' }, describe(error)));
            if (job) show(job, true);
          }
        },
      },
      label,
    );

  const show = (next, force = false) => {
    if (!force && job && next.revision <= job.revision) return;
    job = next;
    fill(facts, details(job));
    const cancel = act('Cancel', client.cancelJob);
    const retry = act('Retry', client.retryJob);
    cancel.disabled = FINAL.has(job.status);
    retry.disabled = !(job.status === 'FAILED' || job.status === 'CANCELLED');
    fill(actions, cancel, retry);
    if (job.revision > lastRevision)
      addHistory({
        revision: job.revision,
        at: job.updatedAt,
        status: job.status,
        progress: job.progress,
        attempt: job.attempt,
        lastError: job.lastError,
      });
  };
  const addHistory = (event) => {
    if (event.revision <= lastRevision) return;
    lastRevision = event.revision;
    historyBody.append(
      h(
        'tr',
        {},
        h('td', {}, event.revision),
        h('td', {}, time(event.at)),
        h('td', {}, h('span', { className: `status status-${event.status}` }, event.status)),
        h('td', {}, event.progress === null ? '—' : `${Math.round(event.progress * 100)}%`),
        h('td', {}, event.attempt),
        h('td', { className: 'wide' }, event.lastError ? `${event.lastError.code}: ${event.lastError.message}` : ''),
      ),
    );
  };

  fill(
    main,
    h('p', {}, h('a', { href: '#/' }, '← All jobs')),
    h('section', { 'aria-labelledby': 'job-h' }, heading, outcome, actions, facts),
    h(
      'section',
      { 'aria-labelledby': 'history-h' },
      h('h2', { id: 'history-h' }, 'History'),
      historyNote,
      h(
        'div',
        { className: 'table-wrap' },
        h(
          'table',
          { 'aria-label': 'revisions of the job' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['revision', 'at', 'status', 'progress', 'attempt'].map((c) => h('th', { scope: 'col' }, c)),
              h('th', { scope: 'col', className: 'wide' }, 'last error'),
            ),
          ),
          historyBody,
        ),
      ),
    ),
  );
  heading.id = 'job-h';

  (async () => {
    try {
      const { job: found } = await graphql(HISTORY, { id });
      if (!found) {
        fill(facts, h('p', { className: 'error', role: 'alert' }, `No job with id ${id}.`));
        return;
      }
      const log = found.history;
      if (log.startsAtRevision === null) fill(historyNote, 'The event log holds none of its revisions any more (EVENT_LOG_RETENTION).');
      else if (log.startsAtRevision > 1) fill(historyNote, `Revisions before ${log.startsAtRevision} were pruned from the event log.`);
      for (const event of log.events) addHistory(event);
      // A job with more revisions than one page shows its first 100 and then its latest ones, live.
      if (log.hasNextPage) fill(historyNote, 'The first 100 revisions, then the newest as they come; the ones between are left out.');
    } catch (error) {
      fill(outcome, h('span', { className: 'error' }, describe(error)));
      return;
    }
    await watch();
  })();
  return () => stop.abort();
}

function details(job) {
  const fact = (label, value) => [h('dt', {}, label), h('dd', {}, value)];
  return [
    h(
      'p',
      {},
      h('span', { className: `status status-${job.status}` }, job.status),
      ' ',
      progressBar(job.progress, 'progress', true),
      ` ${Math.round((job.progress ?? 0) * 100)}%`,
    ),
    h(
      'dl',
      { className: 'facts' },
      fact('kind', job.kind),
      fact('attempt', `${job.attempt} of ${job.maxAttempts}`),
      fact('revision', job.revision),
      fact('created', time(job.createdAt)),
      fact('run at', time(job.runAt)),
      fact('started', time(job.startedAt)),
      fact('finished', time(job.finishedAt)),
      fact('updated', time(job.updatedAt)),
      job.cancelRequestedAt ? fact('cancel requested', time(job.cancelRequestedAt)) : [],
      job.idempotencyKey ? fact('idempotency key', job.idempotencyKey) : [],
    ),
    h('h2', {}, 'Input'),
    h('pre', {}, json(job.input)),
    h('h2', {}, 'Result'),
    h('pre', {}, json(job.result)),
    job.error ? [h('h2', {}, 'Error'), h('pre', { className: 'error' }, `${job.error.code}: ${job.error.message}`)] : [],
    job.lastError && job.lastError !== job.error
      ? [h('h2', {}, 'Last error'), h('pre', {}, `${job.lastError.code}: ${job.lastError.message}`)]
      : [],
  ];
}
