/**
 * Depth-safe, size-bounded text of `Schema` parse issues, for logs and error messages: the issue
 * tree is walked with an explicit stack and the text is cut at `maxLength` characters. Values are
 * described by the core's `describe`; paths and the text the lines make are the core's
 * (`core/issue.ts`). Nothing here throws.
 *
 * @internal
 */
import type * as ParseResult from "effect/ParseResult"
import * as Describe from "../core/describe.js"
import * as Issue from "../core/issue.js"

const expected = (ast: { toString(): string }): string => {
  try {
    return Describe.truncate(String(ast), 200)
  } catch {
    return "<schema>"
  }
}

const leafText = (issue: ParseResult.ParseIssue): string | undefined => {
  const actual = () => Describe.describe(issue.actual, { maxLength: 120, maxDepth: 4 })
  switch (issue._tag) {
    case "Type":
      return issue.message !== undefined
        ? Describe.truncate(issue.message, 200)
        : `Expected ${expected(issue.ast)}, actual ${actual()}`
    case "Missing":
      return issue.message !== undefined ? Describe.truncate(issue.message, 200) : "is missing"
    case "Unexpected":
      return issue.message !== undefined ? Describe.truncate(issue.message, 200) : `is unexpected, actual ${actual()}`
    case "Forbidden":
      return issue.message !== undefined ? Describe.truncate(issue.message, 200) : "is forbidden"
    default:
      return undefined
  }
}

/**
 * The text of a parse issue, for a log line or {@link PayloadDecodeError}: its first few failures,
 * each with its path (`["a"][0]: Expected number, actual "x"`), bounded by `maxLength`. Unlike
 * `TreeFormatter`, it walks the tree without recursion and shows values bounded, so a payload
 * nested thousands of levels deep is described in a few hundred characters.
 *
 * @internal
 */
export const describeIssue = (issue: ParseResult.ParseIssue, maxLength: number = Describe.MAX_LENGTH): string => {
  try {
    const lines: Array<string> = []
    let more = false
    let visited = 0
    const stack: Array<{ readonly issue: ParseResult.ParseIssue; readonly path: Issue.PathNode | undefined }> = [{
      issue,
      path: undefined
    }]
    while (stack.length > 0 && visited++ < Issue.MAX_NODES) {
      const { issue: node, path } = stack.pop()!
      switch (node._tag) {
        case "Pointer": {
          let next = path
          const keys = Array.isArray(node.path) ? node.path : [node.path]
          for (const key of keys) next = { key, parent: next }
          stack.push({ issue: node.issue, path: next })
          break
        }
        case "Refinement":
        case "Transformation":
          stack.push({ issue: node.issue, path })
          break
        case "Composite": {
          const issues = Array.isArray(node.issues) ? node.issues : [node.issues]
          for (let i = issues.length - 1; i >= 0; i--) stack.push({ issue: issues[i]!, path })
          break
        }
        default: {
          if (lines.length >= Issue.MAX_LEAVES) {
            more = true
            break
          }
          const text = leafText(node)
          if (text !== undefined) lines.push(Issue.line(path, text))
        }
      }
    }
    return Issue.text(lines, more || stack.length > 0, maxLength)
  } catch {
    return Issue.NO_MATCH
  }
}
