// The dashboard's entry: asks for an API key when the server wants one, then routes #/ (the list) and
// #/jobs/ID (a job's page). Each view returns a cleanup that ends its live feeds when the view changes.
import { checkKey, createClient, describe, graphql, storedKey, storeKey } from './api.js';
import { fill, h } from './dom.js';
import { showJob } from './job.js';
import { showList } from './list.js';

const main = document.getElementById('main');
const forget = document.getElementById('forget-key');
let client = null;
let kinds = [];
let cleanup = () => {};

forget.addEventListener('click', () => {
  storeKey(null);
  location.reload();
});

async function start() {
  const refused = await checkKey(storedKey());
  if (refused?.code === 'UNAUTHENTICATED') return askForKey(storedKey() ? 'That API key was refused.' : null);
  if (refused) return fill(main, h('p', { className: 'error', role: 'alert' }, describe(refused)));
  forget.hidden = !storedKey();
  client = createClient();
  kinds = (await graphql('query DashboardKinds { kinds { name inputSchema } }')).kinds;
  addEventListener('hashchange', route);
  route();
}

function askForKey(problem) {
  const input = h('input', { type: 'password', name: 'apiKey', autocomplete: 'off', required: true });
  const error = h('p', { className: 'error', role: 'alert' }, problem ?? '');
  const submit = async (event) => {
    event.preventDefault();
    const refused = await checkKey(input.value.trim());
    if (refused) return fill(error, refused.code === 'UNAUTHENTICATED' ? 'That API key was refused.' : describe(refused));
    storeKey(input.value.trim());
    fill(main);
    void start();
  };
  fill(
    main,
    h(
      'section',
      { className: 'key-form', 'aria-labelledby': 'key-h' },
      h('h1', { id: 'key-h' }, 'Sign in'),
      h('p', {}, 'This server needs an API key. It is kept for this tab only (sessionStorage).'),
      h(
        'form',
        { className: 'row', onsubmit: submit },
        h('label', {}, 'API key', input),
        h('button', { type: 'submit', className: 'primary' }, 'Use key'),
      ),
      error,
    ),
  );
  input.focus();
}

function route() {
  cleanup();
  const match = /^#\/jobs\/(.+)$/.exec(location.hash);
  const job = match ? decoded(match[1]) : null;
  cleanup = job ? showJob(main, client, job) : showList(main, client, kinds);
  document.title = job ? `Job ${job} · jobql` : 'Jobs · jobql';
  // Keyboard and screen-reader users start at the new view's heading, not where the old view's link was.
  if (job) main.querySelector('h1')?.focus();
}

/** A hash part as text; as it is when it is not valid percent-encoding (the API then says the id is bad). */
function decoded(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

void start();
