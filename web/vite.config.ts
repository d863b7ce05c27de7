import { defineConfig } from 'vite';

// The console is built into web/dist, which the Go package web embeds.
// Assets are hashed; web/dist/.gitkeep stays so a clone compiles before
// the first build (the Go side then serves a "console not built" page).
export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: false,
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 1000,
  },
  server: {
    proxy: {
      '/v1': { target: 'http://127.0.0.1:8080', ws: true },
      '/_blob': 'http://127.0.0.1:8080',
    },
  },
});
