import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// The app is served by Tauri from ui/dist; nothing is fetched from a network at run time.
export default defineConfig(({ mode }) => ({
  plugins: [svelte()],
  clearScreen: false,
  build: {
    target: 'es2022',
    // No source maps in the bundle the desktop app embeds.
    sourcemap: false,
    assetsInlineLimit: 0,
  },
  // Vitest renders components in jsdom: Svelte's browser build, not its server build.
  resolve: mode === 'test' ? { conditions: ['browser'] } : undefined,
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts'],
  },
}));
