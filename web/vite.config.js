// Builds the console into one folder of static files that `clonekit serve
// --web DIR` serves at /. Relative asset paths, so the folder can be served
// from anywhere; no source maps in the installed bundle.
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  base: './',
  plugins: [react()],
  build: { sourcemap: false, chunkSizeWarningLimit: 2048 },
});
