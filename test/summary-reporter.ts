/**
 * Prints the run's closing line in the plain form CI tools read: `N passed, N failed[, N skipped]`.
 */
import type { Reporter, TestModule } from "vitest/node"

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>) {
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const module of modules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === "passed") passed++
        else if (state === "failed") failed++
        else skipped++
      }
    }
    const line = `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`
    // after the default reporter's summary, so that it is the run's last line
    setTimeout(() => process.stdout.write(`\n${line}\n`), 0)
  }
}
