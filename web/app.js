// The page: pick or drop an image, show the simulator's prediction at once, then run the
// encrypted classification through the worker (worker.js) and the server.
import init, { Classifier } from './pkg/cifhe_wasm.js';

const $ = (id) => document.getElementById(id);
const setState = (s) => { document.body.dataset.state = s; };
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
// A second worker runs the simulator's noise draws of each picked image, so that neither the page
// nor an encrypted run (which holds the first worker) waits for them.
const drawsWorker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });

let classifier, info, modelBytes, current = null, simProbs = null;
// The picked image's noise draws (a promise of their classes; see `noiseDraws`).
let noisy = Promise.resolve([]);
// Simulator runs per image, each with its own noise draw: which classes TFHE's noise can give.
const NOISE_DRAWS = 100;
// What the last encrypted run and the last accuracy measurement found, for people and for the
// browser test.
window.cifhe = { steps: {}, result: null, accuracy: null };

async function fetchOk(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status} ${r.statusText}`);
  return r;
}

async function main() {
  await init();
  const [i, model, samples] = await Promise.all([
    fetchOk('/api/info').then((r) => r.json()),
    fetchOk('/api/model').then((r) => r.arrayBuffer()).then((b) => new Uint8Array(b)),
    fetchOk('/api/samples').then((r) => r.json()),
  ]);
  info = i;
  classifier = new Classifier(model);
  modelBytes = model;
  worker.postMessage({ type: 'init', model, params: info.params });
  drawsWorker.postMessage({ type: 'init', model, params: info.params });
  $('model').textContent = `Model ${info.model}: ${info.description} — TFHE parameters ${info.params}, `
    + `${info.bootstraps} bootstraps per image, server on ${info.threads} threads.`;
  showSamples(samples);
  setupDrop();
  $('run').addEventListener('click', runEncrypted);
  setupAccuracy(samples.length > 0);
  const q = new URLSearchParams(location.search);
  setState('ready');
  if (q.has('accuracy')) {
    $('acc-limit').value = q.get('accuracy');
    if (q.has('model')) $('acc-model').value = q.get('model');
    measureAccuracy();
  }
  if (q.has('sample') && samples[+q.get('sample')]) {
    select(samples[+q.get('sample')].planes, samples[+q.get('sample')].label);
    if (q.has('auto')) runEncrypted();
  }
}

function drawPlanes(canvas, planes) {
  const n = canvas.width * canvas.height;
  const img = new ImageData(canvas.width, canvas.height);
  for (let p = 0; p < n; p++) {
    img.data[4 * p] = planes[p];
    img.data[4 * p + 1] = planes[n + p];
    img.data[4 * p + 2] = planes[2 * n + p];
    img.data[4 * p + 3] = 255;
  }
  canvas.getContext('2d').putImageData(img, 0, 0);
}

function showSamples(samples) {
  for (const s of samples) {
    const c = document.createElement('canvas');
    c.width = c.height = 32;
    c.title = `test image ${s.index}: ${info.labels[s.label]}`;
    drawPlanes(c, s.planes);
    c.addEventListener('click', () => {
      document.querySelectorAll('#samples canvas').forEach((x) => x.classList.remove('selected'));
      c.classList.add('selected');
      select(s.planes, s.label);
    });
    $('samples').append(c);
  }
}

function setupDrop() {
  const drop = $('drop');
  const load = async (file) => {
    if (!file || !file.type.startsWith('image/')) { showError('that is not an image file'); return; }
    try {
      const bmp = await createImageBitmap(file);
      const c = new OffscreenCanvas(bmp.width, bmp.height);
      c.getContext('2d').drawImage(bmp, 0, 0);
      const rgba = c.getContext('2d').getImageData(0, 0, bmp.width, bmp.height).data;
      select(classifier.prepare_rgba(new Uint8Array(rgba.buffer), bmp.width, bmp.height), null);
    } catch (e) { showError(`cannot read the image: ${e.message ?? e}`); }
  };
  $('file').addEventListener('change', (e) => load(e.target.files[0]));
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); load(e.dataTransfer.files[0]); });
}

function showTop(list, probs) {
  const order = [...probs.keys()].sort((a, b) => probs[b] - probs[a]).slice(0, 3);
  list.replaceChildren(...order.map((k) => {
    const li = document.createElement('li');
    li.textContent = `${info.labels[k]} — ${(100 * probs[k]).toFixed(1)}%`;
    return li;
  }));
  return order[0];
}

function setClass(el, k) {
  el.textContent = k === null ? '–' : info.labels[k];
  el.dataset.class = k === null ? '' : String(k);
}

// Noise draws asked of the draws worker, by request number, until it answers.
const pendingDraws = new Map();
let drawRequests = 0;

// How often each class comes out of the simulator over NOISE_DRAWS noise draws of `planes`
// (computed by the draws worker), most frequent first: a borderline image has several, and
// TFHE's answer may be any of them.
function noiseDraws(planes) {
  const id = ++drawRequests;
  drawsWorker.postMessage({ type: 'draws', id, planes, draws: NOISE_DRAWS });
  return new Promise((resolve, reject) => pendingDraws.set(id, { resolve, reject }));
}

drawsWorker.onmessage = (e) => {
  const m = e.data;
  if (m.type === 'draws') {
    pendingDraws.get(m.id)?.resolve(m.classes);
    pendingDraws.delete(m.id);
  } else if (m.type === 'error') {
    // The worker's message queue answers requests in order: the oldest pending one failed.
    const [id, p] = pendingDraws.entries().next().value ?? [];
    if (p) { pendingDraws.delete(id); p.reject(new Error(m.message)); }
  }
};

// A new image: show it, and the simulator's prediction under the TFHE noise model (seed 0).
function select(planes, label) {
  current = planes;
  drawPlanes($('view'), planes);
  $('truth').textContent = label === null ? 'Your image.' : `${info.dataset ?? 'CIFAR'} test image; true class: ${info.labels[label]}.`;
  const probs = classifier.simulate(planes, info.params, 0n);
  simProbs = Array.from(probs);
  setClass($('sim-class'), showTop($('sim-top'), probs));
  const draws = noiseDraws(planes);
  noisy = draws.catch(() => []);
  $('sim-noise').textContent = `Running the simulator over ${NOISE_DRAWS} noise draws…`;
  draws.then((classes) => {
    if (current !== planes) return; // another image was picked meanwhile
    $('sim-noise').textContent = `Over ${NOISE_DRAWS} noise draws: ` +
      classes.map((c) => `${info.labels[c.class]} ${Math.round((100 * c.draws) / NOISE_DRAWS)}%`).join(', ') + '.';
  }, (err) => {
    if (current === planes) $('sim-noise').textContent = `The noise draws failed: ${err.message ?? err}`;
  });
  setClass($('fhe-class'), null);
  $('fhe-top').replaceChildren();
  $('agree').textContent = '';
  $('error').textContent = '';
  $('run').disabled = false;
  setState('simulated');
}

function runEncrypted() {
  if (!current) return;
  $('run').disabled = true;
  $('error').textContent = '';
  window.cifhe.steps = {};
  window.cifhe.result = null;
  document.querySelectorAll('#steps tbody tr').forEach((tr) => {
    tr.className = '';
    tr.cells[2].textContent = '';
  });
  setState('encrypting');
  worker.postMessage({ type: 'classify', planes: current });
}

// The accuracy section: workers classify the server's test images with the simulator, with
// the served model or another one the server offers (`info.models`; the first is the served one).
function setupAccuracy(haveData) {
  info.models.forEach((m, i) => $('acc-model').append(new Option(`${m.name}${i === 0 ? ' (the encrypted runs\' model)' : ''}`, String(i))));
  if (!haveData) {
    $('acc-text').textContent = 'The server has no CIFAR test images (it was started without --data).';
    return;
  }
  $('acc-run').disabled = false;
  $('acc-run').addEventListener('click', measureAccuracy);
}

// Model files by index, fetched when first measured.
const modelFiles = new Map();

async function modelFile(i) {
  if (i === 0) return modelBytes;
  if (!modelFiles.has(i)) {
    modelFiles.set(i, await fetchOk(`/api/models/${i}`).then((r) => r.arrayBuffer()).then((b) => new Uint8Array(b)));
  }
  return modelFiles.get(i);
}

// Workers that measure accuracy, per model, one per core (made on first use): each classifies a
// slice of the test set, so the page uses every core, as the native `eval` does. A model keeps
// its workers (the wasm classifier holds its model for its lifetime).
const pools = new Map();

function accuracyWorkers(n, model, bytes) {
  if (!pools.has(model)) pools.set(model, []);
  const pool = pools.get(model);
  while (pool.length < n) {
    const w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    w.postMessage({ type: 'init', model: bytes, params: info.params });
    pool.push(w);
  }
  return pool.slice(0, n);
}

async function measureAccuracy() {
  const limit = Math.max(1, Math.min(10000, Math.floor(+$('acc-limit').value) || 10000));
  const model = +$('acc-model').value;
  $('acc-run').disabled = true;
  $('acc-classes').hidden = true;
  $('acc-text').textContent = 'loading the model and the test images…';
  window.cifhe.accuracy = null;
  $('accuracy').dataset.state = 'running';
  let bytes;
  try {
    bytes = await modelFile(model);
  } catch (e) {
    accuracyFailed(`cannot load the model: ${e.message ?? e}`);
    return;
  }
  const workers = accuracyWorkers(Math.min(limit, navigator.hardwareConcurrency || 1, 16), model, bytes);
  const parts = workers.map(() => ({ done: 0, correct: 0, result: null }));
  const t0 = performance.now();
  workers.forEach((w, i) => {
    const offset = Math.floor(i * limit / workers.length);
    const count = Math.floor((i + 1) * limit / workers.length) - offset;
    w.onmessage = (e) => {
      const m = e.data;
      if ($('accuracy').dataset.state !== 'running') return;
      if (m.type === 'accuracy-progress') {
        Object.assign(parts[i], { done: m.done, correct: m.correct });
        const done = parts.reduce((a, p) => a + p.done, 0);
        $('acc-progress').max = limit;
        $('acc-progress').value = done;
        $('acc-text').textContent = `${done} / ${limit} images: ${percent(parts.reduce((a, p) => a + p.correct, 0), done)} so far`;
      } else if (m.type === 'accuracy') {
        parts[i].result = m;
        if (parts.every((p) => p.result)) showAccuracy(info.models[model].name, parts.map((p) => p.result), (performance.now() - t0) / 1000, workers.length);
      } else if (m.type === 'accuracy-error' || m.type === 'error') {
        accuracyFailed(m.message);
      }
    };
    w.postMessage({ type: 'accuracy', offset, limit: count });
  });
}

function accuracyFailed(message) {
  $('acc-text').textContent = message;
  $('acc-run').disabled = false;
  $('accuracy').dataset.state = 'error';
}

const percent = (a, b) => `${(100 * a / b).toFixed(2)}%`;

// The workers' results, in test-set order, as one measurement.
function showAccuracy(name, results, seconds, threads) {
  const images = results.reduce((a, r) => a + r.images, 0);
  const correct = results.reduce((a, r) => a + r.correct, 0);
  const perClass = results[0].perClass.map((_, k) => ({
    correct: results.reduce((a, r) => a + r.perClass[k].correct, 0),
    total: results.reduce((a, r) => a + r.perClass[k].total, 0),
  }));
  $('acc-text').textContent = `${name}: ${percent(correct, images)} on ${images} test images (${correct} correct), `
    + `in ${seconds.toFixed(1)} s here on ${threads} thread${threads > 1 ? 's' : ''} (${(images / seconds).toFixed(0)} images/s), under the ${info.params} noise.`;
  $('acc-classes').tBodies[0].replaceChildren(...perClass.map((c, k) => {
    const tr = document.createElement('tr');
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.width = `${(10 * c.correct / Math.max(1, c.total)).toFixed(2)}rem`;
    tr.append(...[info.labels[k], c.total ? percent(c.correct, c.total) : '–'].map((t) => {
      const td = document.createElement('td');
      td.textContent = t;
      return td;
    }), document.createElement('td'));
    tr.cells[2].append(bar);
    return tr;
  }));
  $('acc-classes').hidden = false;
  window.cifhe.accuracy = { model: name, images, correct, seconds, threads, predictions: results.flatMap((r) => r.predictions) };
  $('acc-run').disabled = false;
  $('accuracy').dataset.state = 'done';
}

const size = (b) => (b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e3).toFixed(1)} kB`);

worker.onmessage = async (e) => {
  const m = e.data;
  if (m.type === 'step') {
    const tr = document.querySelector(`#steps tr[data-step="${m.step}"]`);
    tr.className = m.state;
    if (m.state === 'done') {
      tr.cells[2].textContent = `${m.seconds.toFixed(2)} s`;
      if (m.bytes !== undefined && m.step !== 'keygen') tr.cells[3].textContent = size(m.bytes);
      window.cifhe.steps[m.step] = { seconds: m.seconds, bytes: m.bytes };
    } else if (m.state === 'reused') {
      tr.cells[2].textContent = 'reused';
    }
  } else if (m.type === 'progress') {
    $('progress').max = m.total;
    $('progress').value = m.done;
    $('progress-text').textContent = `server: stage ${m.stage}, ${m.done} / ${m.total}`;
  } else if (m.type === 'result') {
    const k = showTop($('fhe-top'), m.probs);
    setClass($('fhe-class'), k);
    const same = String(k) === $('sim-class').dataset.class;
    const draws = await noisy;
    const share = draws.find((c) => c.class === k);
    $('agree').textContent = same
      ? '(same as the simulator)'
      : share
        ? `(differs from the simulator's draw; ${info.labels[k]} comes out of ${share.draws} of its ${NOISE_DRAWS} noise draws: a borderline image)`
        : `(differs from the simulator, which never gave ${info.labels[k]} in ${NOISE_DRAWS} noise draws: unexpected)`;
    $('progress-text').textContent = `done in ${m.seconds.toFixed(1)} s end to end (key ${m.keyId}, parameters ${m.params})`;
    window.cifhe.result = { fheClass: k, simClass: +$('sim-class').dataset.class, seconds: m.seconds, fheProbs: m.probs, simProbs, noisy: draws };
    $('run').disabled = false;
    setState('done');
  } else if (m.type === 'error') {
    showError(m.message);
    $('run').disabled = false;
  }
};

function showError(message) {
  $('error').textContent = message;
  setState('error');
}

main().catch((e) => showError(`cannot start: ${e.message ?? e}`));
