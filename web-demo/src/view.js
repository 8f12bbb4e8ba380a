// DOM updates. Everything is written with textContent/createElement: model files are data, never markup.
import { topK } from './parity.js';
import * as fmt from './format.js';

const SHOWN_VALUES = 8;

export function byId(id) {
  return document.getElementById(id);
}

export function setText(id, text) {
  byId(id).textContent = text;
}

export function showError(message) {
  const box = byId('error');
  box.textContent = message;
  box.hidden = false;
}

export function clearError() {
  byId('error').hidden = true;
}

function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

// Top-3 classes with softmax probabilities; each item carries its label for tests.
function top3List(logits, labels) {
  const list = element('ol');
  for (const { index, p } of topK(logits, 3)) {
    list.append(element('li', `${labels[index]}: ${(100 * p).toFixed(1)}%`, { 'data-label': labels[index] }));
  }
  return list;
}

function valuesList(outputs, meta) {
  const block = element('div', undefined, { class: 'values' });
  for (const spec of meta.outputs) {
    const values = Array.from(outputs[spec.name].slice(0, SHOWN_VALUES), (v) => v.toPrecision(4));
    const more = outputs[spec.name].length > SHOWN_VALUES ? ', …' : '';
    block.append(element('div', `${spec.name} [${spec.shape.join('x')}]: ${values.join(', ')}${more}`));
  }
  return block;
}

// Digits-style models (labels and one score vector) get a top-3; anything else shows its first values.
export function renderOutputs(id, outputs, meta) {
  const cell = byId(id);
  const scores = meta.labels && meta.outputs.length === 1 ? outputs[meta.outputs[0].name] : null;
  cell.replaceChildren(scores ? top3List(scores, meta.labels) : valuesList(outputs, meta));
}

export function renderParity(result, precision, backend, loosened) {
  const badge = byId('parity');
  const verdict = result.passed ? 'parity OK' : 'parity FAILED';
  badge.textContent = `${verdict}: max rel err ${fmt.err(result.maxRelErr)} vs tolerance ${fmt.err(result.tolerance)} ` +
    `(${precision} on ${backend}; max abs err ${fmt.err(result.maxAbsErr)})`;
  badge.className = `badge ${result.passed ? 'pass' : 'fail'}`;
  const note = byId('tolerance-note');
  note.hidden = !loosened;
  note.textContent = loosened
    ? `WebGL computes in 16-bit floats on many GPUs, so on ${backend} the check uses the looser fp16 tolerance.`
    : '';
}

// How far runtime `name`'s outputs are from TF.js's, into element `id`.
export function renderAgreement(id, name, result, tolerance, sameTop1) {
  const verdict = `TF.js and ${name} ${result.finite && result.maxRelErr <= tolerance ? 'agree' : 'DISAGREE'}`;
  const top1 = sameTop1 === null ? '' : `; same top-1 class: ${sameTop1 ? 'yes' : 'no'}`;
  setText(id, `${verdict}: max |difference| ${fmt.err(result.maxAbsErr)}, relative ${fmt.err(result.maxRelErr)} ` +
    `(tolerance ${fmt.err(tolerance)})${top1}`);
}
