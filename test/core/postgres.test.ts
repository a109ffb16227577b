/**
 * The Postgres changes of the core, tested once for both editions: the filter parser
 * (`src/core/postgres/filter.ts`, with the server's error strings), the array literals, the
 * server-side evaluator and subscription params (`src/core/server/filter.ts`: what the test server
 * delivers to which binding). Each edition's PostgresChanges tests check its builder and wrappers
 * over them (builder → parse → evaluate properties included).
 */
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as Filter from "../../src/core/postgres/filter.js"
import type * as Result from "../../src/core/result.js"
import * as ServerFilter from "../../src/core/server/filter.js"

const right = <A, E>(result: Result.Result<A, E>): A => {
  if (!result.ok) throw new Error(`expected ok, got error: ${String(result.error)}`)
  return result.value
}

const left = <A, E>(result: Result.Result<A, E>): E => {
  if (result.ok) throw new Error(`expected error, got ok: ${JSON.stringify(result.value)}`)
  return result.error
}

describe("parseFilter", () => {
  it("empty or whitespace is no filter", () => {
    expect(right(Filter.parseFilter(""))).toEqual([])
    expect(right(Filter.parseFilter("   "))).toEqual([])
  })

  it("parses conditions, not., in lists and quoted values", () => {
    expect(right(Filter.parseFilter("subject=eq.hey"))).toEqual([{
      column: "subject",
      operator: "eq",
      value: "hey",
      negate: false
    }])
    expect(right(Filter.parseFilter("subject=in.(hidee,ho)"))).toEqual([
      { column: "subject", operator: "in", value: "{hidee,ho}", negate: false }
    ])
    expect(right(Filter.parseFilter("subject=not.like.hey%"))).toEqual([
      { column: "subject", operator: "like", value: "hey%", negate: true }
    ])
    expect(right(Filter.parseFilter("id=gt.0,id=lt.100"))).toEqual([
      { column: "id", operator: "gt", value: "0", negate: false },
      { column: "id", operator: "lt", value: "100", negate: false }
    ])
    expect(right(Filter.parseFilter(" a=eq.\"x,y\" , b=in.(\"1,2\",3) "))).toEqual([
      { column: "a", operator: "eq", value: "x,y", negate: false },
      { column: "b", operator: "in", value: "{\"1,2\",3}", negate: false }
    ])
    expect(right(Filter.parseFilter("a=eq.\"say \\\"hi\\\", \\\\ ok\""))[0]!.value).toBe("say \"hi\", \\ ok")
    expect(right(Filter.parseFilter("a=is.null,b=not.is.null,c=isdistinct.3,d=imatch.^x"))).toHaveLength(4)
  })

  it("unquoting follows the server: unterminated or early-closed quotes are kept verbatim", () => {
    expect(right(Filter.parseFilter("a=eq.\"abc"))[0]!.value).toBe("\"abc")
    expect(right(Filter.parseFilter("a=eq.\"a\"b\""))[0]!.value).toBe("\"a\"b\"")
    expect(right(Filter.parseFilter("a=eq.x\"y\""))[0]!.value).toBe("x\"y\"")
  })

  it("a quote opens only after . ( or , — elsewhere commas still split", () => {
    expect(left(Filter.parseFilter("a=eq.x\"y,z\""))).toBe("Error parsing `filter` params: [\"z\\\"\"]")
  })

  it("error strings are the server's", () => {
    const cases: ReadonlyArray<[string, string]> = [
      ["subject=foo.hey", "[\"foo\", \"hey\"]"],
      ["undefined", "[\"undefined\"]"],
      ["a=eq", "[\"eq\"]"],
      ["a=not.eq", "[\"eq\"]"],
      ["a=not.not.eq.1", "[\"not\", \"eq.1\"]"],
      ["a= eq.1", "[\" eq\", \"1\"]"],
      ["a=EQ.1", "[\"EQ\", \"1\"]"],
      ["a=cs.{1}", "[\"cs\", \"{1}\"]"],
      ["a=f\"o#{x}.1", "[\"f\\\"o\\#{x}\", \"1\"]"],
      ["a=x\n.1", "[\"x\\n\", \"1\"]"],
      ["a=x\u0001.1", "[<<120, 1>>, \"1\"]"],
      ["a=in.1,2", "`in` filter value must be wrapped by parentheses"],
      ["a=in.(1", "`in` filter value must be wrapped by parentheses"],
      ["a=not.in.1)", "`in` filter value must be wrapped by parentheses"],
      ["a=in.(", "`in` filter value must be wrapped by parentheses"],
      ["a=eq.1,", "filter must not contain empty segments (check for extra commas)"],
      [",a=eq.1", "filter must not contain empty segments (check for extra commas)"],
      ["a=eq.1,,b=eq.2", "filter must not contain empty segments (check for extra commas)"],
      ["a=eq.1, ,b=eq.2", "filter must not contain empty segments (check for extra commas)"]
    ]
    for (const [filter, detail] of cases) {
      expect(left(Filter.parseFilter(filter)), filter).toBe(`Error parsing \`filter\` params: ${detail}`)
    }
    expect(right(Filter.parseFilter("a=in.()"))[0]!.value).toBe("{}")
    expect(right(Filter.parseFilter("=eq.1"))[0]!.column).toBe("")
  })
})

describe("parseArrayLiteral", () => {
  it("elements, quotes, escapes, NULL, nesting", () => {
    expect(Filter.parseArrayLiteral("{}")).toEqual([])
    expect(Filter.parseArrayLiteral("{1,2,3}")).toEqual(["1", "2", "3"])
    expect(Filter.parseArrayLiteral("{ a , b }")).toEqual(["a", "b"])
    expect(Filter.parseArrayLiteral("{\"a,b\",\"c\\\"d\",NULL,null,\"NULL\"}")).toEqual([
      "a,b",
      "c\"d",
      null,
      null,
      "NULL"
    ])
    expect(Filter.parseArrayLiteral("{{1,2},{3,4}}")).toEqual([["1", "2"], ["3", "4"]])
    expect(Filter.parseArrayLiteral("{a\\,b}")).toEqual(["a,b"])
  })

  it("malformed literals are undefined", () => {
    for (const bad of ["", "1,2", "{1,2", "{,}", "{a,}", "{\"a}", "{a\"b}", "{1}x", "{{1}"]) {
      expect(Filter.parseArrayLiteral(bad), bad).toBeUndefined()
    }
  })
})

const evalFilter = (filter: string, row: Record<string, unknown>, columns?: ReadonlyArray<ServerFilter.Column>) =>
  ServerFilter.evaluate(right(Filter.parseFilter(filter)), row, columns)

describe("evaluate", () => {
  it("numbers compare numerically, exactly beyond 2^53", () => {
    expect(evalFilter("n=eq.1", { n: 1 })).toBe(true)
    expect(evalFilter("n=eq.1.0", { n: 1 })).toBe(true)
    expect(evalFilter("n=gt.9", { n: "10" })).toBe(true)
    expect(evalFilter("n=lt.1e3", { n: 999.5 })).toBe(true)
    expect(evalFilter("n=eq.9007199254740993", { n: "9007199254740993" })).toBe(true)
    expect(evalFilter("n=eq.9007199254740993", { n: "9007199254740992" })).toBe(false)
    expect(evalFilter("n=gt.9007199254740992", { n: "9007199254740993" })).toBe(true)
    expect(evalFilter("n=gt.-1", { n: "-0.5" })).toBe(true)
    expect(evalFilter("n=lt.-1", { n: "-10" })).toBe(true)
    expect(evalFilter("n=eq.0", { n: "-0.000" })).toBe(true)
    expect(evalFilter("n=eq.abc", { n: 1 }, [{ name: "n", type: "int4" }])).toBe(false)
    expect(evalFilter("n=gt.Infinity", { n: "NaN" }, [{ name: "n", type: "numeric" }])).toBe(true)
  })

  it("text compares as text (by column type), otherwise as strings", () => {
    expect(evalFilter("s=gt.9", { s: "10" }, [{ name: "s", type: "text" }])).toBe(false)
    expect(evalFilter("s=gt.9", { s: "10" })).toBe(true)
    expect(evalFilter("s=lt.b", { s: "a" })).toBe(true)
    // the current server has no `\,` escape outside quotes (an older parser had one)
    expect(left(Filter.parseFilter("s=eq.Oslo\\, Norway"))).toBe("Error parsing `filter` params: [\"Norway\"]")
    expect(evalFilter("s=eq.\"Oslo, Norway\"", { s: "Oslo, Norway" })).toBe(true)
  })

  it("NULL never equals; not. of unknown is unknown", () => {
    for (
      const f of [
        "a=eq.null",
        "a=neq.1",
        "a=not.eq.1",
        "a=in.(1,2)",
        "a=not.in.(1,2)",
        "a=like.%",
        "a=not.like.x",
        "a=lt.1",
        "a=match.x"
      ]
    ) {
      expect(evalFilter(f, { a: null }), f).toBe(false)
    }
  })

  it("is null / true / false / unknown, with not.", () => {
    expect(evalFilter("a=is.null", { a: null })).toBe(true)
    expect(evalFilter("a=is.NULL", { a: 1 })).toBe(false)
    expect(evalFilter("a=not.is.null", { a: 1 })).toBe(true)
    expect(evalFilter("a=is.unknown", { a: null })).toBe(true)
    expect(evalFilter("a=is.true", { a: true })).toBe(true)
    expect(evalFilter("a=is.true", { a: "t" })).toBe(true)
    expect(evalFilter("a=is.false", { a: null })).toBe(false)
    expect(evalFilter("a=not.is.false", { a: null })).toBe(true)
    expect(evalFilter("a=is.maybe", { a: null })).toBe(false)
  })

  it("isdistinct is NULL-aware", () => {
    expect(evalFilter("a=isdistinct.null", { a: null })).toBe(false)
    expect(evalFilter("a=isdistinct.null", { a: 1 })).toBe(true)
    expect(evalFilter("a=isdistinct.1", { a: null })).toBe(true)
    expect(evalFilter("a=isdistinct.1", { a: 1 })).toBe(false)
    expect(evalFilter("a=isdistinct.1", { a: 2 })).toBe(true)
    expect(evalFilter("a=not.isdistinct.1", { a: null })).toBe(false)
  })

  it("in: any element equal; a NULL element makes a miss unknown", () => {
    expect(evalFilter("a=in.(1,2,3)", { a: 2 })).toBe(true)
    expect(evalFilter("a=in.(1,2,3)", { a: 4 })).toBe(false)
    expect(evalFilter("a=not.in.(1,2,3)", { a: 4 })).toBe(true)
    expect(evalFilter("a=in.(1,NULL)", { a: 1 })).toBe(true)
    expect(evalFilter("a=not.in.(1,NULL)", { a: 2 })).toBe(false)
    expect(evalFilter("a=in.(\"x,y\",z)", { a: "x,y" })).toBe(true)
    expect(evalFilter("a=in.()", { a: "x" })).toBe(false)
  })

  it("like / ilike: % any run, _ one character, \\ escapes", () => {
    expect(evalFilter("t=like.%foo%", { t: "a foo b" })).toBe(true)
    expect(evalFilter("t=like.foo%", { t: "a foo" })).toBe(false)
    expect(evalFilter("t=like.f_o", { t: "fxo" })).toBe(true)
    expect(evalFilter("t=like.f_o", { t: "fo" })).toBe(false)
    expect(evalFilter("t=like.FOO", { t: "foo" })).toBe(false)
    expect(evalFilter("t=ilike.FOO", { t: "foo" })).toBe(true)
    expect(evalFilter("t=like.\"100\\\\%\"", { t: "100%" })).toBe(true)
    expect(evalFilter("t=like.\"100\\\\%\"", { t: "1000" })).toBe(false)
    expect(evalFilter("t=like.a.b*c", { t: "a.b*c" })).toBe(true)
    expect(evalFilter("t=like.a%", { t: "a\nb" })).toBe(true)
    expect(evalFilter("t=like._", { t: "🚀" })).toBe(true)
  })

  it("match / imatch are regexes; an invalid one never matches", () => {
    expect(evalFilter("t=match.^a.c$", { t: "abc" })).toBe(true)
    expect(evalFilter("t=match.b", { t: "abc" })).toBe(true)
    expect(evalFilter("t=match.^B", { t: "bc" })).toBe(false)
    expect(evalFilter("t=imatch.^B", { t: "bc" })).toBe(true)
    expect(evalFilter("t=match.\"(\"", { t: "(" })).toBe(false)
    expect(evalFilter("t=not.match.\"(\"", { t: "(" })).toBe(false)
  })

  it("booleans, json, timestamps by column type", () => {
    expect(evalFilter("b=eq.true", { b: true })).toBe(true)
    expect(evalFilter("b=eq.t", { b: true })).toBe(true)
    expect(evalFilter("b=eq.false", { b: "f" }, [{ name: "b", type: "bool" }])).toBe(true)
    expect(evalFilter("j=eq.{\"a\": 1}", { j: { a: 1 } }, [{ name: "j", type: "jsonb" }])).toBe(true)
    expect(evalFilter("j=eq.\"[1,2]\"", { j: [1, 2] })).toBe(true)
    const ts = [{ name: "at", type: "timestamptz" }]
    expect(evalFilter("at=gt.2024-01-01 00:00:00+00", { at: "2024-01-01T00:00:01Z" }, ts)).toBe(true)
    expect(evalFilter("at=eq.2024-01-01T02:00:00+02:00", { at: "2024-01-01T00:00:00Z" }, ts)).toBe(true)
  })

  it("AND of conditions; conditions on columns the row lacks are skipped (as the server's join)", () => {
    expect(evalFilter("a=eq.1,b=eq.2", { a: 1, b: 2 })).toBe(true)
    expect(evalFilter("a=eq.1,b=eq.2", { a: 1, b: 3 })).toBe(false)
    expect(evalFilter("a=eq.1,zz=eq.2", { a: 1 })).toBe(true)
    expect(evalFilter("zz=eq.2", { a: 1 })).toBe(false)
    expect(ServerFilter.evaluate([], {})).toBe(true)
  })
})

describe("parseSubscriptionParams", () => {
  it("defaults as the server: event *, schema only → every table, table only → public", () => {
    expect(
      right(ServerFilter.parseSubscriptionParams({ schema: "public", table: "messages", filter: "subject=eq.hey" }))
    )
      .toEqual({
        event: "*",
        schema: "public",
        table: "messages",
        filter: [{ column: "subject", operator: "eq", value: "hey", negate: false }],
        select: null
      })
    expect(right(ServerFilter.parseSubscriptionParams({ schema: "public" }))).toMatchObject({
      schema: "public",
      table: "*"
    })
    expect(right(ServerFilter.parseSubscriptionParams({ table: "messages" }))).toMatchObject({
      schema: "public",
      table: "messages"
    })
    expect(right(ServerFilter.parseSubscriptionParams({ event: "insert", schema: "s" })).event).toBe("INSERT")
    expect(right(ServerFilter.parseSubscriptionParams({ event: "TRUNCATE", schema: "s" })).event).toBe("*")
    expect(right(ServerFilter.parseSubscriptionParams({ schema: "s", table: "t", filter: "" })).filter).toEqual([])
    expect(right(ServerFilter.parseSubscriptionParams({ schema: "s", table: "t", select: ["a", 1, "b"] })).select)
      .toEqual([
        "a",
        "b"
      ])
    expect(right(ServerFilter.parseSubscriptionParams({ schema: "s", table: "t", select: [] })).select).toBe(null)
  })

  it("error strings are the server's", () => {
    expect(
      left(ServerFilter.parseSubscriptionParams({ schema: "public", table: "messages", filter: "subject=foo.hey" }))
    )
      .toBe(
        "Error parsing `filter` params: [\"foo\", \"hey\"]"
      )
    expect(left(ServerFilter.parseSubscriptionParams({}))).toBe(
      "No subscription params provided. Please provide at least a `schema` or `table` to subscribe to: %{}"
    )
    expect(left(ServerFilter.parseSubscriptionParams({ schema: "public", filter: "id=eq.1", event: "*" }))).toBe(
      "No subscription params provided. Please provide at least a `schema` or `table` to subscribe to: %{\"event\" => \"*\", \"filter\" => \"id=eq.1\", \"schema\" => \"public\"}"
    )
    expect(left(ServerFilter.parseSubscriptionParams({ schema: "s", table: "t", filter: null }))).toContain(
      "%{\"filter\" => nil, \"schema\" => \"s\", \"table\" => \"t\"}"
    )
    expect(left(ServerFilter.parseSubscriptionParams({ user_token: "secret" }))).toBe(
      "No subscription params provided. Please provide at least a `schema` or `table` to subscribe to: <redacted>"
    )
    expect(left(ServerFilter.parseSubscriptionParams({ schema: "s", table: "t", select: "a,b" }))).toBe(
      "Error parsing `select` params: expected a list of column name strings, e.g. select: [\"col1\", \"col2\"]"
    )
    for (const params of [{ schema: "*", table: "t", select: ["a"] }, { schema: "s", select: ["a"] }]) {
      expect(left(ServerFilter.parseSubscriptionParams(params))).toBe(
        "Column selection is not supported for wildcard subscriptions. Provide an explicit schema and table name."
      )
    }
  })

  it("matchesBinding: event, schema and table wildcards, filter on record (old_record for DELETE)", () => {
    const params = (p: object) => right(ServerFilter.parseSubscriptionParams(p))
    const change = { type: "INSERT", schema: "public", table: "todos", record: { id: 1, done: false } }
    expect(ServerFilter.matchesBinding(params({ event: "*", schema: "*" }), change)).toBe(true)
    expect(ServerFilter.matchesBinding(params({ event: "INSERT", schema: "public", table: "todos" }), change)).toBe(
      true
    )
    expect(ServerFilter.matchesBinding(params({ event: "UPDATE", schema: "public" }), change)).toBe(false)
    expect(ServerFilter.matchesBinding(params({ schema: "other" }), change)).toBe(false)
    expect(ServerFilter.matchesBinding(params({ schema: "public", table: "*" }), change)).toBe(true)
    expect(ServerFilter.matchesBinding(params({ schema: "public", table: "notes" }), change)).toBe(false)
    expect(ServerFilter.matchesBinding(params({ schema: "public", table: "todos", filter: "id=eq.1" }), change)).toBe(
      true
    )
    expect(ServerFilter.matchesBinding(params({ schema: "public", table: "todos", filter: "id=eq.2" }), change)).toBe(
      false
    )
    const del = { type: "DELETE", schema: "public", table: "todos", old_record: { id: 2 } }
    expect(ServerFilter.matchesBinding(params({ schema: "public", table: "todos", filter: "id=eq.2" }), del)).toBe(true)
    expect(ServerFilter.matchesBinding(params({ schema: "public", table: "todos", filter: "id=eq.1" }), del)).toBe(
      false
    )
    expect(ServerFilter.project({ id: 1, a: 2, b: 3 }, ["id", "b", "zz"])).toEqual({ id: 1, b: 3 })
    expect(ServerFilter.project({ id: 1 }, null)).toEqual({ id: 1 })
  })

  it("bindingId: deterministic, key order does not matter, 27 bits", () => {
    const a = ServerFilter.bindingId({ event: "*", schema: "public", table: "t" })
    expect(ServerFilter.bindingId({ table: "t", schema: "public", event: "*" })).toBe(a)
    expect(ServerFilter.bindingId({ event: "*", schema: "public", table: "t", filter: undefined })).toBe(a)
    expect(ServerFilter.bindingId({ event: "INSERT", schema: "public", table: "t" })).not.toBe(a)
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const id = ServerFilter.bindingId(v)
        expect(Number.isInteger(id) && id >= 0 && id < 2 ** 27).toBe(true)
        expect(ServerFilter.bindingId(JSON.parse(JSON.stringify(v)))).toBe(id)
      })
    )
  })
})
