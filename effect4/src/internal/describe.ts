/**
 * Depth-safe, size-bounded text of `Schema` issues (`SchemaIssue.Issue`), for logs and error
 * messages: the issue tree is walked with an explicit stack and the text is cut at `maxLength`
 * characters. Values (an issue's `input`, present when decoding ran with `reportInput: true`) are
 * described by the core's `describe`; paths and the text the lines make are the core's
 * (`core/issue.ts`). Nothing here throws.
 *
 * @internal
 */
import * as SchemaIssue from "effect/SchemaIssue"
import * as Describe from "../../../src/core/describe.js"
import * as Issue from "../../../src/core/issue.js"

// the text of an annotation (`message`, `expected`), when it is one
const annotationText = (annotations: unknown, key: string): string | undefined => {
  if (typeof annotations !== "object" || annotations === null) return undefined
  const value = (annotations as Record<string, unknown>)[key]
  return typeof value === "string" ? Describe.truncate(value, 200) : undefined
}

// `Expected <type>` (or the schema's own `message`) for an AST, computed by Effect from the schema
// alone: an issue built without input is formatted without walking any value
const expectedOf = (ast: SchemaIssue.InvalidType["ast"]): string => {
  try {
    return Describe.truncate(SchemaIssue.defaultLeafHook(new SchemaIssue.InvalidType(ast)), 200)
  } catch {
    return "Expected <schema>"
  }
}

// `, actual <value>` when the issue reports its input (`reportInput: true`)
const actual = (issue: SchemaIssue.Issue): string =>
  SchemaIssue.hasInput(issue) ? `, actual ${Describe.describe(issue.input, { maxLength: 120, maxDepth: 4 })}` : ""

const filterText = (issue: SchemaIssue.Filter): string | undefined => {
  const inner = issue.issue
  const message = annotationText(issue.filter.annotations, "message") ??
    (inner._tag === "InvalidValue" || inner._tag === "Forbidden" || inner._tag === "MissingKey"
      ? annotationText(inner.annotations, "message")
      : undefined)
  if (message !== undefined) return message
  if (inner._tag !== "InvalidValue") return undefined
  const expected = annotationText(inner.annotations, "expected") ??
    annotationText(issue.filter.annotations, "expected") ?? "<filter>"
  return `Expected ${expected}${actual(issue)}`
}

const leafText = (issue: SchemaIssue.Issue): string | undefined => {
  switch (issue._tag) {
    case "InvalidType":
      return `${expectedOf(issue.ast)}${actual(issue)}`
    case "InvalidValue": {
      const message = annotationText(issue.annotations, "message")
      if (message !== undefined) return message
      const expected = annotationText(issue.annotations, "expected")
      return expected !== undefined ? `Expected ${expected}${actual(issue)}` : `is invalid${actual(issue)}`
    }
    case "MissingKey":
      return annotationText(issue.annotations, "messageMissingKey") ?? "is missing"
    case "UnexpectedKey":
      return annotationText(issue.ast.annotations, "messageUnexpectedKey") ?? `is unexpected${actual(issue)}`
    case "Forbidden":
      return annotationText(issue.annotations, "message") ?? "is forbidden"
    case "OneOf":
      return `${expectedOf(issue.ast)} (exactly one member must match)${actual(issue)}`
    case "AnyOf":
      // a union none of whose members could even be tried (else its members' issues are listed)
      return `${expectedOf(issue.ast)}${actual(issue)}`
    default:
      return undefined
  }
}

/**
 * The text of a schema issue, for a log line or `PayloadDecodeError`: its first few failures,
 * each with its path (`["a"][0]: Expected number, actual "x"`), bounded by `maxLength`. Unlike
 * `SchemaIssue.makeFormatterDefault`, it walks the tree without recursion and shows values bounded,
 * so a payload nested thousands of levels deep is described in a few hundred characters. The
 * `actual` part appears when the issue carries its input (decoding with `reportInput: true`).
 *
 * @internal
 */
export const describeIssue = (issue: SchemaIssue.Issue, maxLength: number = Describe.MAX_LENGTH): string => {
  try {
    const lines: Array<string> = []
    let more = false
    let visited = 0
    const stack: Array<{ readonly issue: SchemaIssue.Issue; readonly path: Issue.PathNode | undefined }> = [{
      issue,
      path: undefined
    }]
    while (stack.length > 0 && visited++ < Issue.MAX_NODES) {
      const { issue: node, path } = stack.pop()!
      switch (node._tag) {
        case "Pointer": {
          let next = path
          for (const key of node.path) next = { key, parent: next }
          stack.push({ issue: node.issue, path: next })
          break
        }
        case "Encoding":
          stack.push({ issue: node.issue, path })
          break
        case "Filter": {
          const text = filterText(node)
          if (text === undefined) stack.push({ issue: node.issue, path })
          else if (lines.length >= Issue.MAX_LEAVES) more = true
          else lines.push(Issue.line(path, text))
          break
        }
        default: {
          if ((node._tag === "Composite" || node._tag === "AnyOf") && node.issues.length > 0) {
            for (let i = node.issues.length - 1; i >= 0; i--) stack.push({ issue: node.issues[i]!, path })
            break
          }
          // a leaf, or a union with no member issue
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
