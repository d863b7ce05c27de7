'use strict';
// Shared helpers for golden.js and bench.js: load a TFJS graph model from a
// directory through an in-memory IOHandler and set up the wasm backend.

const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
const tfc = require('@tensorflow/tfjs-converter');
const wasm = require('@tensorflow/tfjs-backend-wasm');

async function initWasm(threads) {
  const dist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
  wasm.setWasmPaths(dist);
  if (threads) wasm.setThreadsCount(threads);
  await tf.setBackend('wasm');
  await tf.ready();
  return tf.getBackend();
}

// loadModel reads <dir>/<name>.json and its shards (concatenated in manifest
// order) without any fetch.
async function loadModel(dir, name) {
  const j = JSON.parse(fs.readFileSync(path.join(dir, name + '.json'), 'utf8'));
  const specs = [];
  const bufs = [];
  for (const g of j.weightsManifest) {
    for (const p of g.paths) bufs.push(fs.readFileSync(path.join(dir, p)));
    specs.push(...g.weights);
  }
  const all = Buffer.concat(bufs);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const handler = {
    load: async () => ({
      modelTopology: j.modelTopology,
      weightSpecs: specs,
      weightData,
      format: j.format,
      generatedBy: j.generatedBy,
      convertedBy: j.convertedBy,
      signature: j.signature,
      userDefinedMetadata: j.userDefinedMetadata,
    }),
  };
  return tfc.loadGraphModel(handler);
}

// lcg returns n float32 values in [-scale, scale): a 32-bit LCG whose values
// are exactly representable, so the Go test regenerates identical inputs
// (see lcgInput in golden_test.go).
function lcg(n, seed, scale) {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s >>> 8) / 16777216 * 2 - 1) * scale;
  }
  return out;
}

// The three models, their input shapes and the LCG parameters of the
// "noise" case (kept in sync with golden_test.go).
const MODELS = [
  { name: 'emotion', noiseShape: [2, 64, 64, 1], seed: 1, scale: 1 },
  { name: 'blazeface', noiseShape: [1, 256, 256, 3], seed: 2, scale: 1 },
  { name: 'nanodet', noiseShape: [1, 3, 416, 416], seed: 3, scale: 2 },
];

module.exports = { tf, initWasm, loadModel, lcg, MODELS };
