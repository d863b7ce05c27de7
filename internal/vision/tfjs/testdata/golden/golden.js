'use strict';
// Golden tensors for internal/vision/tfjs, computed by TensorFlow.js 4.22.0
// with the wasm backend.
//
//   node golden.js <modelsDir> <outDir> [photosDir]
//       every case (LCG noise and, with photosDir, one real photo per model):
//       <model>.<case>.input.f32 and <model>.<case>.<output>.f32 (raw
//       little-endian float32) plus index.json describing them.
//   node golden.js --fixtures <modelsDir> <fixturesDir>
//       the small committed fixtures (noise case only): emotion and blazeface
//       outputs in full, nanodet outputs sampled every SAMPLE_STRIDE-th
//       element; fixtures.json describes them.
//
// The Go tests (golden_test.go) run this automatically when node and npm are
// available and compare the Go executor's outputs against these files.

const fs = require('fs');
const path = require('path');
const jpeg = require('jpeg-js');
const { tf, initWasm, loadModel, lcg, MODELS } = require('./common');

const SAMPLE_STRIDE = 61;

// One real photo per model, preprocessed the way the production pipeline
// does (see vision.md §3); only the numbers matter to the golden test.
const PHOTOS = {
  emotion: 'ai-face.jpg',
  blazeface: 'group-3.jpg',
  nanodet: 'group-1.jpg',
};

function readJPEG(file) {
  const img = jpeg.decode(fs.readFileSync(file), { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
  return tf.tensor4d(Float32Array.from(img.data), [1, img.height, img.width, 3]);
}

function photoInput(model, photosDir) {
  const rgb = readJPEG(path.join(photosDir, PHOTOS[model]));
  return tf.tidy(() => {
    switch (model) {
      case 'emotion': {
        const x = tf.image.resizeBilinear(tf.div(rgb, 255), [64, 64]);
        const g = tf.sum(tf.mul(x, tf.tensor1d([0.2989, 0.587, 0.114])), 3, true);
        return tf.mul(tf.sub(g, 0.5), 2);
      }
      case 'blazeface':
        return tf.sub(tf.div(tf.image.resizeBilinear(rgb, [256, 256]), 127.5), 1);
      case 'nanodet': {
        const x = tf.reverse(tf.image.resizeBilinear(rgb, [416, 416]), 3); // RGB -> BGR
        const n = tf.div(tf.sub(x, tf.tensor1d([103.53, 116.28, 123.675])), tf.tensor1d([57.375, 57.12, 58.395]));
        return tf.transpose(n, [0, 3, 1, 2]);
      }
    }
    throw new Error('unknown model ' + model);
  });
}

function writeF32(file, data) {
  const f = Float32Array.from(data);
  fs.writeFileSync(file, Buffer.from(f.buffer, f.byteOffset, f.byteLength));
}

const baseName = (n) => n.replace(/:0$/, '');

async function runCase(model, input) {
  const names = model.outputs.map((o) => o.name);
  let outs = model.execute(input, names);
  if (!Array.isArray(outs)) outs = [outs];
  const res = [];
  for (let i = 0; i < names.length; i++) {
    res.push({ name: baseName(names[i]), shape: outs[i].shape, data: await outs[i].data() });
    outs[i].dispose();
  }
  return res;
}

async function golden(modelsDir, outDir, photosDir) {
  fs.mkdirSync(outDir, { recursive: true });
  const index = { tfjs: tf.version_core, backend: tf.getBackend(), cases: [] };
  for (const m of MODELS) {
    const model = await loadModel(modelsDir, m.name);
    const inName = baseName(model.inputs[0].name);
    const cases = [['noise', tf.tensor(lcg(m.noiseShape.reduce((a, b) => a * b), m.seed, m.scale), m.noiseShape)]];
    if (photosDir) cases.push(['photo', photoInput(m.name, photosDir)]);
    for (const [cname, input] of cases) {
      const inFile = `${m.name}.${cname}.input.f32`;
      writeF32(path.join(outDir, inFile), await input.data());
      const outs = await runCase(model, input);
      const c = { model: m.name, case: cname, input: { name: inName, shape: input.shape, file: inFile }, outputs: [] };
      for (const o of outs) {
        const file = `${m.name}.${cname}.${o.name}.f32`;
        writeF32(path.join(outDir, file), o.data);
        c.outputs.push({ name: o.name, shape: o.shape, file });
      }
      index.cases.push(c);
      input.dispose();
    }
    model.dispose();
  }
  fs.writeFileSync(path.join(outDir, 'index.json'), JSON.stringify(index, null, 1) + '\n');
}

async function fixtures(modelsDir, outDir) {
  fs.mkdirSync(outDir, { recursive: true });
  const index = { tfjs: tf.version_core, backend: tf.getBackend(), sampleStride: SAMPLE_STRIDE, outputs: [] };
  for (const m of MODELS) {
    const model = await loadModel(modelsDir, m.name);
    const input = tf.tensor(lcg(m.noiseShape.reduce((a, b) => a * b), m.seed, m.scale), m.noiseShape);
    for (const o of await runCase(model, input)) {
      const stride = m.name === 'nanodet' ? SAMPLE_STRIDE : 1;
      const vals = [];
      for (let i = 0; i < o.data.length; i += stride) vals.push(o.data[i]);
      const file = `${m.name}.${o.name}.f32`;
      writeF32(path.join(outDir, file), vals);
      index.outputs.push({ model: m.name, name: o.name, shape: o.shape, stride, file });
    }
    input.dispose();
    model.dispose();
  }
  fs.writeFileSync(path.join(outDir, 'fixtures.json'), JSON.stringify(index, null, 1) + '\n');
}

async function main() {
  const args = process.argv.slice(2);
  await initWasm();
  if (args[0] === '--fixtures') {
    if (args.length !== 3) throw new Error('usage: node golden.js --fixtures <modelsDir> <fixturesDir>');
    await fixtures(args[1], args[2]);
  } else {
    if (args.length < 2) throw new Error('usage: node golden.js <modelsDir> <outDir> [photosDir]');
    await golden(args[0], args[1], args[2]);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
