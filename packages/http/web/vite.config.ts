// The web UI's styles and script, served by the host at /-/assets/ from dist/ui-assets (see src/web/assets.ts).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/ui-assets', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // Fixed names: the server serves them with an ETag of their content, so no hash is needed in the name.
    rollupOptions: {
      input: fileURLToPath(new URL('./main.ts', import.meta.url)),
      output: { entryFileNames: 'app.js', assetFileNames: 'app[extname]' },
    },
  },
});
