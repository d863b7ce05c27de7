'use strict';
// Side-by-side figures for the Go executor's benchmarks: the same three models
// under TensorFlow.js 4.22.0 with the wasm backend (SIMD), same LCG inputs.
//
//   node bench.js <modelsDir> [threads] [runs]
//
// threads: 0 (default: the backend's own choice) or n (setThreadsCount(n)).
// Node builds of tfjs-backend-wasm have no multithreading support, so both
// settings normally run single-threaded; the script prints what it got.
// Output: one line per model with the median and mean latency in ms.

const { tf, initWasm, loadModel, lcg, MODELS } = require('./common');

async function main() {
  const [dir, threadsArg, runsArg] = process.argv.slice(2);
  if (!dir) throw new Error('usage: node bench.js <modelsDir> [threads] [runs]');
  const threads = Number(threadsArg || 0);
  const backend = await initWasm(threads);
  const b = tf.backend();
  const threadsUsed = typeof b.wasm?.tfjs?.getThreadsCount === 'function' ? b.wasm.tfjs.getThreadsCount() : 'n/a';
  console.log(`tfjs ${tf.version_core} backend=${backend} threads requested=${threads || 'default'} used=${threadsUsed} node=${process.version}`);
  for (const m of MODELS) {
    const model = await loadModel(dir, m.name);
    const shape = m.name === 'emotion' ? [1, 64, 64, 1] : m.noiseShape;
    const input = tf.tensor(lcg(shape.reduce((a, c) => a * c), m.seed, m.scale), shape);
    const names = model.outputs.map((o) => o.name);
    const once = async () => {
      let outs = model.execute(input, names);
      if (!Array.isArray(outs)) outs = [outs];
      for (const o of outs) {
        await o.data();
        o.dispose();
      }
    };
    const runs = Number(runsArg || (m.name === 'nanodet' ? 10 : 50));
    for (let i = 0; i < 3; i++) await once();
    const t = [];
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      await once();
      t.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    t.sort((a, c) => a - c);
    const mean = t.reduce((a, c) => a + c, 0) / t.length;
    console.log(`${m.name.padEnd(10)} input=${JSON.stringify(shape)} runs=${runs} median=${t[t.length >> 1].toFixed(2)}ms mean=${mean.toFixed(2)}ms min=${t[0].toFixed(2)}ms`);
    input.dispose();
    model.dispose();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
