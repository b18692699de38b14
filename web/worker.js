// The TFHE client, in a worker so the page stays responsive during the slow steps. The secret
// key is made here and never leaves: only the server key and ciphertexts are sent.
import init, { Classifier, FheClient } from './pkg/cifhe_wasm.js';

let classifier, params, client, serverKey, session;
const post = (m) => self.postMessage(m);
const now = () => performance.now();

// Runs one step, telling the page when it starts and how long it took; `f` may return `{ bytes }`.
async function step(name, f) {
  post({ type: 'step', step: name, state: 'running' });
  const t = now();
  const r = await f();
  post({ type: 'step', step: name, state: 'done', seconds: (now() - t) / 1000, bytes: r?.bytes });
  return r;
}

// Messages are handled one after another: a classification posted while the model is still
// loading waits for it.
let queue = Promise.resolve();
self.onmessage = (e) => {
  queue = queue.then(() => handle(e.data));
};

async function handle(m) {
  try {
    if (m.type === 'init') {
      await init();
      classifier = new Classifier(m.model);
      params = m.params;
      post({ type: 'ready' });
    } else if (m.type === 'classify') {
      await classify(m.planes);
    } else if (m.type === 'draws') {
      post({ type: 'draws', id: m.id, classes: noiseDraws(m.planes, m.draws) });
    } else if (m.type === 'accuracy') {
      await measureAccuracy(m.offset, m.limit).catch((err) => post({ type: 'accuracy-error', message: String(err?.message ?? err) }));
    }
  } catch (err) {
    post({ type: 'error', message: String(err?.message ?? err) });
  }
}

// How often each class comes out of the simulator over `draws` runs on `planes`, draw d reading
// noise stream d of seed 0 (draw 0 is the prediction the page shows), most frequent first.
function noiseDraws(planes, draws) {
  const images = new Uint8Array(planes.length * draws);
  for (let d = 0; d < draws; d++) images.set(planes, d * planes.length);
  const counts = new Map();
  for (const k of classifier.classify_batch(images, 0n, params, 0n)) counts.set(k, (counts.get(k) ?? 0) + 1);
  return [...counts].map(([k, n]) => ({ class: k, draws: n })).sort((a, b) => b.draws - a.draws);
}

async function classify(planes) {
  const t0 = now();
  if (!client) {
    await step('keygen', () => { client = new FheClient(classifier, params); });
    await step('server_key', () => { serverKey = client.server_key(); return { bytes: serverKey.length }; });
  } else {
    post({ type: 'step', step: 'keygen', state: 'reused' });
    post({ type: 'step', step: 'server_key', state: 'reused' });
  }
  if (!session) {
    await step('upload_key', () => openSession());
  } else {
    post({ type: 'step', step: 'upload_key', state: 'reused' });
  }
  let ct;
  await step('encrypt', () => { ct = client.encrypt(classifier, planes); return { bytes: ct.length }; });
  let result;
  await step('evaluate', async () => { result = await evaluate(ct); return { bytes: result.length }; });
  let probs;
  await step('decrypt', () => { probs = client.decrypt(classifier, result); });
  post({ type: 'result', probs: Array.from(probs), seconds: (now() - t0) / 1000, keyId: client.key_id(), params: client.params() });
}

// The model's accuracy on the server's CIFAR test images `offset` to `offset + limit`, by the
// simulator here: the classes TFHE under the page's parameters would give, each image with its
// own noise stream (seed 0, stream = its index in the test set), as `train-host eval
// --fhe-params` draws them. The page splits the test set between several of these workers.
async function measureAccuracy(offset, limit) {
  const r = await fetch(`/api/test-set?offset=${offset}&limit=${limit}`);
  if (!r.ok) {
    const j = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
    throw new Error(`no test images: ${j.error}`);
  }
  const data = new Uint8Array(await r.arrayBuffer());
  const len = classifier.image_len();
  const n = Math.floor(data.length / (len + 1));
  const perClass = Array.from({ length: classifier.classes() }, () => ({ correct: 0, total: 0 }));
  const predictions = new Uint16Array(n);
  const images = new Uint8Array(len * 100);
  let correct = 0;
  for (let k = 0; k < n; k += 100) {
    const m = Math.min(100, n - k);
    for (let i = 0; i < m; i++) images.set(data.subarray((k + i) * (len + 1) + 1, (k + i + 1) * (len + 1)), i * len);
    const found = classifier.classify_batch(images.subarray(0, m * len), BigInt(offset + k), params, 0n);
    for (let i = 0; i < m; i++) {
      const label = data[(k + i) * (len + 1)];
      predictions[k + i] = found[i];
      perClass[label].total += 1;
      if (found[i] === label) { correct += 1; perClass[label].correct += 1; }
    }
    post({ type: 'accuracy-progress', done: k + m, correct });
  }
  post({ type: 'accuracy', images: n, correct, perClass, predictions: Array.from(predictions) });
}

async function openSession() {
  const r = await fetch('/api/sessions', { method: 'POST', body: serverKey, headers: { 'content-type': 'application/octet-stream' } });
  const j = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) throw new Error(`server refused the key: ${j.error}`);
  session = j.session;
  return { bytes: serverKey.length };
}

// Sends the ciphertext and reads the server's NDJSON stream: progress lines, then the result.
async function evaluate(ct) {
  const r = await fetch(`/api/sessions/${session}/classify`, { method: 'POST', body: ct, headers: { 'content-type': 'application/octet-stream' } });
  if (!r.ok) {
    const j = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
    if (r.status === 404) session = null; // timed out: the next run sends the key again
    throw new Error(`server refused the image: ${j.error}`);
  }
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    let i;
    while ((i = buffered.indexOf('\n')) >= 0) {
      const ev = JSON.parse(buffered.slice(0, i));
      buffered = buffered.slice(i + 1);
      if (ev.event === 'progress') post({ type: 'progress', stage: ev.stage, done: ev.done, total: ev.total });
      else if (ev.event === 'done') return Uint8Array.from(atob(ev.result), (c) => c.charCodeAt(0));
      else if (ev.event === 'error') throw new Error(`server: ${ev.message}`);
    }
  }
  throw new Error('the server closed the connection without a result');
}
