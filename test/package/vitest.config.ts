import { defineConfig } from "vitest/config"

// The packaging test (`npm run test:package`): run on its own, after the main suite, so that its
// subprocesses (npm pack and install, tsc, node) do not compete with it for the CPU. Its file is
// `*.spec.ts`, outside the main suite's `test/**/*.test.ts`.
export default defineConfig({
  test: {
    root: new URL("../..", import.meta.url).pathname,
    include: ["test/package/*.spec.ts"],
    testTimeout: 600_000,
    hookTimeout: 1_200_000
  }
})
