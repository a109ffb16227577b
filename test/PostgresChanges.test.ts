import { postgresChangesFilter } from "@supabase/realtime-js"
import * as Transformers from "@supabase/realtime-js/dist/main/lib/transformers.js"
import { Either } from "effect"
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as Convert from "../src/core/postgres/convert.js"
import * as Filter from "../src/core/postgres/filter.js"
import type * as Result from "../src/core/result.js"
import * as ServerFilter from "../src/core/server/filter.js"
import { withExactPostgresNumbers } from "../src/internal/exactNumbers.js"
import * as PostgresChanges from "../src/PostgresChanges.js"
import type { Binding, FilterBuilder, FilterOperator } from "../src/PostgresChanges.js"
import * as Protocol from "../src/Protocol.js"
import { InvalidArgument, PostgresBindingMismatch, ProtocolError } from "../src/RealtimeError.js"

const convertChangeData = Transformers.convertChangeData as (
  columns: ReadonlyArray<{ name: string; type: string }>,
  record: Record<string, unknown> | null,
  options?: { skipTypes?: Array<string> }
) => Record<string, unknown>

const make = PostgresChanges.Filter.make

// the edition's functions return an Either, the core's a Result
const right = <A, E>(e: Either.Either<A, E> | Result.Result<A, E>): A => {
  if ("ok" in e) {
    if (!e.ok) throw new Error(`expected ok, got error: ${String(e.error)}`)
    return e.value
  }
  if (Either.isLeft(e)) throw new Error(`expected Right, got Left: ${String(e.left)}`)
  return e.right
}

const left = <A, E>(e: Either.Either<A, E> | Result.Result<A, E>): E => {
  if ("ok" in e) {
    if (e.ok) throw new Error(`expected error, got ok: ${JSON.stringify(e.value)}`)
    return e.error
  }
  if (Either.isRight(e)) throw new Error(`expected Left, got Right: ${JSON.stringify(e.right)}`)
  return e.left
}

// -----------------------------------------------------------------------------
// builder
// -----------------------------------------------------------------------------

type Step =
  | {
    readonly op: Exclude<FilterOperator, "in" | "is">
    readonly column: string
    readonly value: string | number | boolean | null
    readonly negate: boolean
  }
  | {
    readonly op: "in"
    readonly column: string
    readonly values: ReadonlyArray<string | number | boolean>
    readonly negate: boolean
  }
  | {
    readonly op: "is"
    readonly column: string
    readonly value: null | boolean | "null" | "true" | "false" | "unknown"
    readonly negate: boolean
  }

const methodOf = {
  eq: "eq",
  neq: "neq",
  gt: "gt",
  gte: "gte",
  lt: "lt",
  lte: "lte",
  like: "like",
  ilike: "ilike",
  match: "match",
  imatch: "imatch",
  isdistinct: "isDistinct"
} as const

// Applies the same steps to our builder and to realtime-js's (same method names and overloads).
const applySteps = <B extends { [K: string]: any }>(start: B, steps: ReadonlyArray<Step>): B =>
  steps.reduce<B>((b, s) => {
    if (s.negate) return b.not(s.column, s.op, s.op === "in" ? s.values : s.value)
    if (s.op === "in") return b.in(s.column, s.values)
    if (s.op === "is") return b.is(s.column, s.value)
    return b[methodOf[s.op]](s.column, s.value)
  }, start)

describe("Filter builder", () => {
  const cases: ReadonlyArray<[string, (b: any) => any, string]> = [
    ["eq number", (b) => b.eq("id", 1), "id=eq.1"],
    ["eq string", (b) => b.eq("name", "ada"), "name=eq.ada"],
    ["eq boolean", (b) => b.eq("done", true), "done=eq.true"],
    ["eq null", (b) => b.eq("x", null), "x=eq.null"],
    ["neq", (b) => b.neq("id", 2), "id=neq.2"],
    ["gt", (b) => b.gt("age", 30), "age=gt.30"],
    ["gte", (b) => b.gte("age", 30.5), "age=gte.30.5"],
    ["lt", (b) => b.lt("at", "2024-01-01"), "at=lt.2024-01-01"],
    ["lte", (b) => b.lte("n", -1), "n=lte.-1"],
    ["in", (b) => b.in("status", ["open", "new", "open"]), "status=in.(open,new)"],
    ["in mixed", (b) => b.in("n", [1, "1", 2, true]), "n=in.(1,1,2,true)"],
    ["in quoted", (b) => b.in("s", ["a,b", "c", "d\"e", " f"]), "s=in.(\"a,b\",c,\"d\\\"e\",\" f\")"],
    ["like", (b) => b.like("title", "%foo_"), "title=like.%foo_"],
    ["ilike", (b) => b.ilike("title", "%Foo%"), "title=ilike.%Foo%"],
    ["match", (b) => b.match("title", "^a.*z$"), "title=match.^a.*z$"],
    ["imatch", (b) => b.imatch("title", "^A"), "title=imatch.^A"],
    ["match with parens", (b) => b.match("t", "^(a|b)$"), "t=match.\"^(a|b)$\""],
    ["is null", (b) => b.is("deleted_at", null), "deleted_at=is.null"],
    ["is true", (b) => b.is("ok", true), "ok=is.true"],
    ["is false", (b) => b.is("ok", false), "ok=is.false"],
    ["is 'null'", (b) => b.is("ok", "null"), "ok=is.null"],
    ["is unknown", (b) => b.is("ok", "unknown"), "ok=is.unknown"],
    ["isDistinct", (b) => b.isDistinct("a", 5), "a=isdistinct.5"],
    ["isDistinct null", (b) => b.isDistinct("a", null), "a=isdistinct.null"],
    ["not in", (b) => b.not("status", "in", ["draft", "archived"]), "status=not.in.(draft,archived)"],
    ["not is", (b) => b.not("deleted_at", "is", null), "deleted_at=not.is.null"],
    ["not eq", (b) => b.not("id", "eq", 5), "id=not.eq.5"],
    ["not like", (b) => b.not("t", "like", "a,b%"), "t=not.like.\"a,b%\""],
    ["AND", (b) => b.eq("id", 1).lt("age", 30), "id=eq.1,age=lt.30"],
    ["comma", (b) => b.eq("area", "Oslo, Norway"), "area=eq.\"Oslo, Norway\""],
    ["parens", (b) => b.eq("v", "(x)"), "v=eq.\"(x)\""],
    ["double quote", (b) => b.eq("v", "say \"hi\""), "v=eq.\"say \\\"hi\\\"\""],
    ["backslash", (b) => b.eq("v", "a\\b"), "v=eq.\"a\\\\b\""],
    ["leading space", (b) => b.eq("v", " x"), "v=eq.\" x\""],
    ["trailing tab", (b) => b.eq("v", "x\t"), "v=eq.\"x\t\""],
    ["inner space", (b) => b.eq("v", "a b"), "v=eq.a b"],
    ["empty string", (b) => b.eq("v", ""), "v=eq."],
    ["dots and equals", (b) => b.eq("v", "a.b=c"), "v=eq.a.b=c"],
    ["unicode", (b) => b.eq("v", "zoë 🚀"), "v=eq.zoë 🚀"],
    ["number formats", (b) => b.eq("a", 1e21).eq("b", -0).eq("c", 0.1), "a=eq.1e+21,b=eq.0,c=eq.0.1"]
  ]

  it.each(cases)("%s: same output as realtime-js", (_, f, expected) => {
    const ours = f(make())
    const theirs = f(postgresChangesFilter())
    expect(theirs.build()).toBe(expected)
    expect(ours.toString()).toBe(expected)
    expect(right(ours.build())).toBe(expected)
    expect(`${ours}`).toBe(expected)
  })

  it("an empty builder is the empty filter", () => {
    expect(make().toString()).toBe("")
    expect(right(make().build())).toBe("")
  })

  it("is immutable: a builder can be reused", () => {
    const base = make().eq("room", 1)
    const a = base.eq("kind", "a")
    const b = base.eq("kind", "b")
    expect(base.toString()).toBe("room=eq.1")
    expect(a.toString()).toBe("room=eq.1,kind=eq.a")
    expect(b.toString()).toBe("room=eq.1,kind=eq.b")
  })

  it("is pipeable and serializes to its string in JSON", () => {
    const f = make().pipe((b) => b.eq("a", 1), (b) => b.gt("b", 2))
    expect(f.toString()).toBe("a=eq.1,b=gt.2")
    expect(JSON.stringify({ filter: f })).toBe(`{"filter":"a=eq.1,b=gt.2"}`)
    expect(PostgresChanges.isFilterBuilder(f)).toBe(true)
    expect(PostgresChanges.isFilterBuilder("a=eq.1")).toBe(false)
  })

  it("bigint values", () => {
    expect(make().eq("id", 9007199254740993n).in("n", [1n, 2n]).toString()).toBe("id=eq.9007199254740993,n=in.(1,2)")
  })

  it("invalid input is an InvalidArgument from build(), never a throw", () => {
    const emptyIn = make().eq("a", 1).in("status", [])
    expect(emptyIn.toString()).toBe("a=eq.1,status=in.()")
    expect(left(emptyIn.build())).toBeInstanceOf(InvalidArgument)
    expect(left(emptyIn.build()).message).toContain("`in` filter on \"status\" requires at least one value")
    expect(left(make().not("s", "in", []).build())).toBeInstanceOf(InvalidArgument)
    const hundred = Array.from({ length: 100 }, (_, i) => i)
    expect(Either.isRight(make().in("n", [...hundred, 0]).build())).toBe(true) // 100 distinct values
    expect(left(make().in("n", [...hundred, 100]).build()).message).toContain(
      "`in` filter on \"n\" takes at most 100 values, got 101"
    )
    for (const column of ["", "a=b", "a,b", "f(x)", "a\"b"]) {
      expect(left(make().eq(column, 1).build()).message).toContain("invalid filter column")
    }
    expect(left(make().is("a", "maybe" as any).build()).message).toContain("`is` filter")
    expect(left(make().not("a", "cs" as any, "x").build()).message).toContain("unknown filter operator")
    // the first problem is reported, later conditions still chain
    expect(left(make().in("a", []).eq("", 1).build()).message).toContain("\"a\"")
  })

  it("in elements that Postgres would misread are quoted (realtime-js sends them bare)", () => {
    expect(make().in("s", ["", "NULL", "null", "{a}", "x"]).toString()).toBe(
      "s=in.(\"\",\"NULL\",\"null\",\"{a}\",x)"
    )
    const parsed = right(Filter.parseFilter(make().in("s", ["", "NULL", "{a}"]).toString()))
    expect(Filter.parseArrayLiteral(parsed[0]!.value)).toEqual(["", "NULL", "{a}"])
  })

  it("property: same output as realtime-js for any conditions", () => {
    fc.assert(
      fc.property(fc.array(stepArb(textArb), { maxLength: 6 }), (steps) => {
        const ours = applySteps<FilterBuilder>(make(), steps)
        const theirs = applySteps(postgresChangesFilter() as any, steps)
        expect(right(ours.build())).toBe(theirs.build())
      }),
      { numRuns: 500 }
    )
  })
})

const columnArb = fc.constantFrom("id", "name", "status", "a_b", "Col", "x.y")
const textArb = fc.string({
  unit: fc.constantFrom("a", "B", "1", " ", ",", "(", ")", "\"", "\\", "%", "_", ".", "=", "é", "\t"),
  maxLength: 8
})
const scalarArb = (text: fc.Arbitrary<string>) =>
  fc.oneof(text, fc.integer({ min: -1000, max: 1000 }), fc.boolean(), fc.double({ noNaN: true }))
// in elements realtime-js would send bare and Postgres would misread are left to the dedicated test
const inTextArb = (text: fc.Arbitrary<string>) => text.filter((s) => s !== "" && s.trim().toUpperCase() !== "NULL")

const stepArb = (text: fc.Arbitrary<string>): fc.Arbitrary<Step> =>
  fc.oneof(
    fc.record({
      op: fc.constantFrom(
        "eq",
        "neq",
        "gt",
        "gte",
        "lt",
        "lte",
        "like",
        "ilike",
        "match",
        "imatch",
        "isdistinct" as const
      ),
      column: columnArb,
      value: fc.oneof(scalarArb(text), fc.constant(null)),
      negate: fc.boolean()
    }) as fc.Arbitrary<Step>,
    fc.record({
      op: fc.constant("in" as const),
      column: columnArb,
      values: fc.array(fc.oneof(inTextArb(text), fc.integer({ min: -5, max: 5 }), fc.boolean()), {
        minLength: 1,
        maxLength: 4
      }),
      negate: fc.boolean()
    }),
    fc.record({
      op: fc.constant("is" as const),
      column: columnArb,
      value: fc.constantFrom(null, true, false, "null" as const, "true" as const, "false" as const, "unknown" as const),
      negate: fc.boolean()
    })
  )

// -----------------------------------------------------------------------------
// the builder's output through the core's parser (its own cases: test/core/postgres.test.ts)
// -----------------------------------------------------------------------------

describe("parseFilter", () => {
  it("property: everything the builder produces parses back to its conditions", () => {
    fc.assert(
      fc.property(fc.array(stepArb(textArb), { minLength: 1, maxLength: 6 }), (steps) => {
        const built = right(applySteps<FilterBuilder>(make(), steps).build())
        const parsed = right(Filter.parseFilter(built))
        expect(parsed).toHaveLength(steps.length)
        steps.forEach((step, i) => {
          const c = parsed[i]!
          expect(c.column).toBe(step.column)
          expect(c.operator).toBe(step.op)
          expect(c.negate).toBe(step.negate)
          if (step.op === "in") {
            expect(Filter.parseArrayLiteral(c.value)).toEqual(Array.from(new Set(step.values)).map(String))
          } else {
            expect(c.value).toBe(step.value === null ? "null" : String(step.value))
          }
        })
      }),
      { numRuns: 1000 }
    )
  })
})

// -----------------------------------------------------------------------------
// the builder's output through the core's evaluator (its own cases: test/core/postgres.test.ts)
// -----------------------------------------------------------------------------

const evalFilter = (filter: string, row: Record<string, unknown>, columns?: ReadonlyArray<ServerFilter.Column>) =>
  ServerFilter.evaluate(right(Filter.parseFilter(filter)), row, columns)

describe("evaluate", () => {
  it("property: builder → parse → evaluate agrees with a direct predicate", () => {
    type Row = { readonly n: number | null; readonly s: string | null; readonly b: boolean | null }
    type Cond =
      | {
        readonly kind: "cmp"
        readonly col: "n" | "s"
        readonly op: "eq" | "neq" | "lt" | "lte" | "gt" | "gte"
        readonly value: number | string
        readonly negate: boolean
      }
      | {
        readonly kind: "in"
        readonly col: "n" | "s"
        readonly values: ReadonlyArray<number | string>
        readonly negate: boolean
      }
      | { readonly kind: "like"; readonly prefix: string; readonly infix: string; readonly negate: boolean }
      | { readonly kind: "is"; readonly col: "n" | "s" | "b"; readonly value: null | boolean; readonly negate: boolean }
      | {
        readonly kind: "distinct"
        readonly col: "n" | "s"
        readonly value: number | string | null
        readonly negate: boolean
      }
    const text = fc.string({
      unit: fc.constantFrom("a", "b", " ", ",", "(", ")", "\"", "\\", "%", "_", ".", "="),
      maxLength: 5
    })
    const literal = fc.string({ unit: fc.constantFrom("a", "b", " ", ",", "(", ")", "\"", "."), maxLength: 3 })
    const small = fc.integer({ min: -3, max: 3 })
    const colValue = (col: "n" | "s"): fc.Arbitrary<number | string> =>
      col === "n" ? small : text.filter((s) => s !== "" && s.trim().toUpperCase() !== "NULL")
    const condArb: fc.Arbitrary<Cond> = fc.oneof(
      fc.constantFrom("n" as const, "s" as const).chain((col) =>
        fc.record({
          kind: fc.constant("cmp" as const),
          col: fc.constant(col),
          op: fc.constantFrom(
            "eq" as const,
            "neq" as const,
            "lt" as const,
            "lte" as const,
            "gt" as const,
            "gte" as const
          ),
          value: col === "n" ? small : text,
          negate: fc.boolean()
        })
      ),
      fc.constantFrom("n" as const, "s" as const).chain((col) =>
        fc.record({
          kind: fc.constant("in" as const),
          col: fc.constant(col),
          values: fc.array(colValue(col), { minLength: 1, maxLength: 3 }),
          negate: fc.boolean()
        })
      ),
      fc.record({ kind: fc.constant("like" as const), prefix: literal, infix: literal, negate: fc.boolean() }),
      fc.record({
        kind: fc.constant("is" as const),
        col: fc.constantFrom("n" as const, "s" as const, "b" as const),
        value: fc.constantFrom(null, true, false),
        negate: fc.boolean()
      }),
      fc.constantFrom("n" as const, "s" as const).chain((col) =>
        fc.record({
          kind: fc.constant("distinct" as const),
          col: fc.constant(col),
          value: fc.oneof(col === "n" ? small : text.filter((s) => s.toLowerCase() !== "null"), fc.constant(null)),
          negate: fc.boolean()
        })
      )
    )
    const rowArb: fc.Arbitrary<Row> = fc.record({
      n: fc.option(small, { nil: null }),
      s: fc.option(text, { nil: null }),
      b: fc.option(fc.boolean(), { nil: null })
    })
    const columns = [{ name: "n", type: "int8" }, { name: "s", type: "text" }, { name: "b", type: "bool" }]

    const build = (conds: ReadonlyArray<Cond>): FilterBuilder =>
      conds.reduce<FilterBuilder>((f, c) => {
        switch (c.kind) {
          case "cmp":
            return c.negate ? f.not(c.col, c.op, c.value) : f[c.op](c.col, c.value)
          case "in":
            return c.negate ? f.not(c.col, "in", c.values) : f.in(c.col, c.values)
          case "like": {
            const pattern = `${c.prefix}%${c.infix}%`
            return c.negate ? f.not("s", "like", pattern) : f.like("s", pattern)
          }
          case "is":
            return c.negate ? f.not(c.col, "is", c.value) : f.is(c.col, c.value)
          case "distinct":
            return c.negate ? f.not(c.col, "isdistinct", c.value) : f.isDistinct(c.col, c.value)
        }
      }, make())

    const tri = (t: boolean | null, negate: boolean) => (t === null ? null : negate ? !t : t)
    const order = (a: number | string, b: number | string) => (a < b ? -1 : a > b ? 1 : 0)
    const direct = (c: Cond, row: Row): boolean | null => {
      switch (c.kind) {
        case "cmp": {
          const v = row[c.col]
          if (v === null) return null
          const o = order(v, c.value)
          const r = { eq: o === 0, neq: o !== 0, lt: o < 0, lte: o <= 0, gt: o > 0, gte: o >= 0 }[c.op]
          return tri(r, c.negate)
        }
        case "in": {
          const v = row[c.col]
          return v === null ? null : tri(c.values.includes(v), c.negate)
        }
        case "like": {
          const v = row.s
          if (v === null) return null
          const rest = v.startsWith(c.prefix) ? v.slice(c.prefix.length) : undefined
          return tri(rest !== undefined && rest.includes(c.infix), c.negate)
        }
        case "is":
          return tri(row[c.col] === c.value, c.negate)
        case "distinct": {
          const v = row[c.col]
          return tri(c.value === null ? v !== null : v === null ? true : v !== c.value, c.negate)
        }
      }
    }

    fc.assert(
      fc.property(fc.array(condArb, { minLength: 1, maxLength: 4 }), rowArb, (conds, row) => {
        const filter = right(build(conds).build())
        const expected = conds.every((c) => direct(c, row) === true)
        expect(evalFilter(filter, row, columns)).toBe(expected)
      }),
      { numRuns: 3000 }
    )
  })
})

// -----------------------------------------------------------------------------
// bindings and server ids
// -----------------------------------------------------------------------------

describe("bindings", () => {
  it("toWire / toWireEither: builder to string, empty filter and select left out", () => {
    const binding: Binding = {
      event: "UPDATE",
      schema: "public",
      table: "orders",
      filter: make().gt("amount", 100).eq("status", "open")
    }
    expect(PostgresChanges.toWire(binding)).toEqual({
      event: "UPDATE",
      schema: "public",
      table: "orders",
      filter: "amount=gt.100,status=eq.open"
    })
    expect(right(PostgresChanges.toWireEither(binding))).toEqual(PostgresChanges.toWire(binding))
    expect(right(PostgresChanges.toWireEither({ event: "*", schema: "public", filter: make(), select: [] }))).toEqual({
      event: "*",
      schema: "public"
    })
    expect(right(PostgresChanges.toWireEither({ event: "*", schema: "s", table: "t", select: ["id"] }))).toEqual({
      event: "*",
      schema: "s",
      table: "t",
      select: ["id"]
    })
  })

  it("toWireEither refuses what the server would refuse, with its message", () => {
    const fail = (b: Binding) => left(PostgresChanges.toWireEither(b))
    expect(fail({ event: "*", schema: "public", table: "t", filter: "a=in.1" }).message).toBe(
      "postgres_changes: Error parsing `filter` params: `in` filter value must be wrapped by parentheses"
    )
    expect(fail({ event: "*", schema: "public", table: "t", filter: make().in("a", []) })).toBeInstanceOf(
      InvalidArgument
    )
    expect(fail({ event: "*", schema: "" }).message).toContain("`schema`")
    expect(fail({ event: "*", schema: "s", table: "" }).message).toContain("`table`")
    expect(fail({ event: "TRUNCATE" as any, schema: "s" }).message).toContain("unknown event")
    expect(fail({ event: "*", schema: "s", select: ["a"] }).message).toContain("Column selection is not supported")
    expect(fail({ event: "*", schema: "*", table: "t", select: ["a"] }).message).toContain("Column selection")
  })

  it("acceptsEvent", () => {
    expect(PostgresChanges.acceptsEvent("*", "DELETE")).toBe(true)
    expect(PostgresChanges.acceptsEvent("INSERT", "insert")).toBe(true)
    expect(PostgresChanges.acceptsEvent("INSERT", "UPDATE")).toBe(false)
  })

  const bindings: ReadonlyArray<Binding> = [
    { event: "INSERT", schema: "public", table: "todos" },
    { event: "*", schema: "public", table: "todos", filter: make().eq("id", 1) },
    { event: "DELETE", schema: "public" },
    { event: "*", schema: "s", table: "t", select: ["id", "name"] }
  ]
  const reply = bindings.map((b, i) => ({ ...PostgresChanges.toWire(b), id: 100 + i }))

  it("matchBindingIds: ids by content", () => {
    expect(right(PostgresChanges.matchBindingIds(bindings, reply))).toEqual([[100], [101], [102], [103]])
  })

  it("matchBindingIds: a reordered reply still matches", () => {
    const reordered = [reply[2], reply[0], reply[3], reply[1]]
    expect(right(PostgresChanges.matchBindingIds(bindings, reordered))).toEqual([[100], [101], [102], [103]])
  })

  it("matchBindingIds: identical bindings share the id; duplicate entries collapse", () => {
    const twice = [bindings[0]!, bindings[1]!, bindings[0]!]
    const serverIds = twice.map((b) => ({
      ...PostgresChanges.toWire(b),
      id: ServerFilter.bindingId(PostgresChanges.toWire(b))
    }))
    const ids = right(PostgresChanges.matchBindingIds(twice, serverIds))
    expect(ids[0]).toEqual(ids[2])
    expect(ids[0]).toHaveLength(1)
    expect(ids[0]).not.toEqual(ids[1])
    // one reply entry for two identical bindings is enough
    expect(right(PostgresChanges.matchBindingIds(twice, serverIds.slice(0, 2)))).toEqual([ids[0], ids[1], ids[0]])
  })

  it("matchBindingIds: null / undefined / \"\" are absent; event is case-insensitive; ids may be strings", () => {
    const b: ReadonlyArray<Binding> = [{ event: "INSERT", schema: "public", filter: "" }]
    expect(
      right(
        PostgresChanges.matchBindingIds(b, [{
          id: "7",
          event: "insert",
          schema: "public",
          table: null,
          filter: null,
          select: null
        }])
      )
    ).toEqual([[7]])
    expect(right(PostgresChanges.matchBindingIds(b, [{ id: 7, event: "INSERT", schema: "public", table: "" }])))
      .toEqual([[7]])
  })

  it("matchBindingIds: a filter that differs is a mismatch naming the binding", () => {
    const wrong = reply.map((e, i) => (i === 1 ? { ...e, filter: "id=eq.2" } : e))
    const error = left(PostgresChanges.matchBindingIds(bindings, wrong))
    expect(error).toBeInstanceOf(PostgresBindingMismatch)
    expect(error.message).toBe(
      "mismatch between server and client bindings for postgres changes: no server id for binding {\"event\":\"*\",\"schema\":\"public\",\"table\":\"todos\",\"filter\":\"id=eq.1\"}"
    )
  })

  it("matchBindingIds: a missing entry, an extra entry, a malformed reply", () => {
    expect(left(PostgresChanges.matchBindingIds(bindings, reply.slice(1))).detail).toContain("no server id for binding")
    expect(left(PostgresChanges.matchBindingIds(bindings.slice(1), reply)).detail).toContain("matches no binding")
    expect(left(PostgresChanges.matchBindingIds(bindings, undefined)).detail).toContain("lists no postgres_changes")
    expect(right(PostgresChanges.matchBindingIds([], undefined))).toEqual([])
    expect(left(PostgresChanges.matchBindingIds(bindings, { a: 1 })).detail).toContain("not a list")
    expect(left(PostgresChanges.matchBindingIds(bindings, [{ event: "*" }])).detail).toContain("malformed entry")
    expect(left(PostgresChanges.matchBindingIds(bindings, [{ id: "x", event: "*" }])).detail).toContain(
      "malformed entry"
    )
  })

  it("matchBindingIds: select must match too", () => {
    const b: ReadonlyArray<Binding> = [{ event: "*", schema: "s", table: "t", select: ["id"] }]
    expect(left(PostgresChanges.matchBindingIds(b, [{ id: 1, event: "*", schema: "s", table: "t" }]))).toBeInstanceOf(
      PostgresBindingMismatch
    )
  })
})

// -----------------------------------------------------------------------------
// conversion
// -----------------------------------------------------------------------------

describe("conversion", () => {
  it("matches realtime-js's convertChangeData outside int8 / numeric", () => {
    const columns = [
      { name: "b", type: "bool" },
      { name: "f4", type: "float4" },
      { name: "f8", type: "float8" },
      { name: "i2", type: "int2" },
      { name: "i4", type: "int4" },
      { name: "o", type: "oid" },
      { name: "j", type: "json" },
      { name: "jb", type: "jsonb" },
      { name: "bad", type: "jsonb" },
      { name: "ts", type: "timestamp" },
      { name: "tz", type: "timestamptz" },
      { name: "t", type: "text" },
      { name: "u", type: "uuid" },
      { name: "ai", type: "_int4" },
      { name: "ab", type: "_bool" },
      { name: "ae", type: "_int4" },
      { name: "aj", type: "_jsonb" },
      { name: "n", type: "int4" },
      { name: "already", type: "_int4" }
    ]
    const record = {
      b: "t",
      f4: "1.5",
      f8: "-2e3",
      i2: "7",
      i4: 8,
      o: "42",
      j: "{\"k\":1}",
      jb: "[1,{\"a\":null}]",
      bad: "{oops",
      ts: "2024-01-01 00:00:00",
      tz: "2024-01-01 00:00:00+00",
      t: "1",
      u: "b5b5...",
      ai: "{1,2,3}",
      ab: "{t,f}",
      ae: "{}",
      aj: "{\"{\\\"a\\\":1}\"}",
      n: null,
      already: [1, 2],
      extra: "no column"
    }
    const ours = PostgresChanges.convertRow(columns, record)
    expect(ours).toEqual(convertChangeData(columns, record))
    expect(ours).toMatchObject({
      b: true,
      f4: 1.5,
      ts: "2024-01-01T00:00:00",
      ai: [1, 2, 3],
      aj: [{ a: 1 }],
      bad: "{oops"
    })
  })

  it("int8 keeps precision: string by default, bigint on request, number as realtime-js", () => {
    const columns = [{ name: "id", type: "int8" }]
    const big = "9007199254740993"
    expect(PostgresChanges.convertRow(columns, { id: big })).toEqual({ id: big })
    expect(PostgresChanges.convertRow(columns, { id: big }, { int8: "bigint" })).toEqual({ id: 9007199254740993n })
    expect(PostgresChanges.convertRow(columns, { id: "-12345678901234567890" }, { int8: "bigint" })).toEqual({
      id: -12345678901234567890n
    })
    expect(PostgresChanges.convertRow(columns, { id: big }, { int8: "number" })).toEqual(
      convertChangeData(columns, { id: big })
    )
    // a number that arrived already parsed: its text (exact for safe integers)
    expect(PostgresChanges.convertRow(columns, { id: 42 })).toEqual({ id: "42" })
    expect(PostgresChanges.convertRow(columns, { id: 42 }, { int8: "bigint" })).toEqual({ id: 42n })
    expect(PostgresChanges.convertRow(columns, { id: 9999999999999990000 }, { int8: "bigint" })).toEqual({
      id: 9999999999999990000n
    })
    expect(PostgresChanges.convertRow(columns, { id: null }, { int8: "bigint" })).toEqual({ id: null })
    expect(PostgresChanges.convertRow([{ name: "ids", type: "_int8" }], { ids: `{1,${big},NULL}` })).toEqual({
      ids: ["1", big, null]
    })
    expect(PostgresChanges.convertRow([{ name: "ids", type: "_int8" }], { ids: ["1", 2] }, { int8: "bigint" })).toEqual(
      { ids: [1n, 2n] }
    )
  })

  it("numeric keeps its decimal text by default", () => {
    const columns = [{ name: "price", type: "numeric" }]
    expect(PostgresChanges.convertRow(columns, { price: "12345678901234567890.123456789" })).toEqual({
      price: "12345678901234567890.123456789"
    })
    expect(PostgresChanges.convertRow(columns, { price: 1.5 })).toEqual({ price: "1.5" })
    expect(PostgresChanges.convertRow(columns, { price: "1.5" }, { numeric: "number" })).toEqual({ price: 1.5 })
  })

  it("arrays are parsed as Postgres literals (quoted elements, NULL, nesting)", () => {
    const row = PostgresChanges.convertRow(
      [{ name: "tags", type: "_text" }, { name: "grid", type: "_int4" }, { name: "bad", type: "_int4" }],
      { tags: "{a,\"b c\",\"d,e\",NULL,1}", grid: "{{1,2},{3,4}}", bad: "{1,2" }
    )
    expect(row).toEqual({ tags: ["a", "b c", "d,e", null, "1"], grid: [[1, 2], [3, 4]], bad: "{1,2" })
  })

  it("skipTypes leaves values as received", () => {
    const columns = [{ name: "b", type: "bool" }, { name: "id", type: "int8" }]
    expect(PostgresChanges.convertRow(columns, { b: "t", id: 5 }, { skipTypes: ["bool", "int8"] })).toEqual({
      b: "t",
      id: 5
    })
  })

  it("convertChange: INSERT / UPDATE / DELETE shapes", () => {
    const base = {
      schema: "public",
      table: "todos",
      commit_timestamp: "2024-01-01T00:00:00Z",
      columns: [{ name: "id", type: "int8" }, { name: "done", type: "bool" }],
      errors: null
    }
    expect(right(PostgresChanges.convertChange({ ...base, type: "INSERT", record: { id: "1", done: "f" } }))).toEqual({
      schema: "public",
      table: "todos",
      commit_timestamp: "2024-01-01T00:00:00Z",
      eventType: "INSERT",
      new: { id: "1", done: false },
      old: {},
      errors: null
    })
    const update = right(
      PostgresChanges.convertChange({
        ...base,
        type: "UPDATE",
        record: { id: "1", done: "t" },
        old_record: { id: "1" }
      })
    )
    expect(update).toMatchObject({ eventType: "UPDATE", new: { id: "1", done: true }, old: { id: "1" } })
    const del = right(
      PostgresChanges.convertChange({
        ...base,
        type: "delete",
        old_record: { id: "1" },
        errors: ["Error 401: Unauthorized"]
      })
    )
    expect(del).toMatchObject({ eventType: "DELETE", new: {}, old: { id: "1" }, errors: ["Error 401: Unauthorized"] })
    // tolerated: extra keys
    expect(
      Either.isRight(
        PostgresChanges.convertChange({
          ...base,
          type: "INSERT",
          columns: [{ name: "id", type: "int8", type_modifier: 4294967295 }],
          record: {}
        })
      )
    ).toBe(true)
  })

  it("convertChange: malformed data is a ProtocolError", () => {
    for (
      const bad of [
        null,
        1,
        { type: "TRUNCATE", schema: "s", table: "t" },
        { type: "INSERT", table: "t" },
        { type: "INSERT", schema: "s", table: "t", columns: "x" },
        { type: "INSERT", schema: "s", table: "t", record: [1] },
        { type: "INSERT", schema: "s", table: "t", errors: "x" }
      ]
    ) {
      expect(left(PostgresChanges.convertChange(bad))).toBeInstanceOf(ProtocolError)
    }
  })

  it("a __proto__ column stays an own field", () => {
    const record = JSON.parse("{\"__proto__\": \"x\", \"id\": \"1\"}")
    const row = PostgresChanges.convertRow([{ name: "id", type: "int8" }], record)
    expect(Object.keys(row)).toEqual(["__proto__", "id"])
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype)
  })

  it("parseJsonPreservingPrecision keeps numbers a double cannot hold, as text", () => {
    const text =
      "{\"ids\":[1],\"data\":{\"record\":{\"id\":9007199254740993,\"n\":-12345678901234567890.5,\"ok\":42,\"f\":0.1,\"g\":1e400,\"s\":\"9007199254740993\",\"q\":\"a\\\"12345678901234567890\"}}}"
    expect(PostgresChanges.parseJsonPreservingPrecision(text)).toEqual({
      ids: [1],
      data: {
        record: {
          id: "9007199254740993",
          n: "-12345678901234567890.5",
          ok: 42,
          f: 0.1,
          g: "1e400",
          s: "9007199254740993",
          q: "a\"12345678901234567890"
        }
      }
    })
    expect(PostgresChanges.parseJsonPreservingPrecision("[0.30000000000000004, 1.0, -0, 123e2]")).toEqual([
      0.30000000000000004,
      1,
      -0,
      12300
    ])
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = JSON.stringify(v)
        expect(PostgresChanges.parseJsonPreservingPrecision(text)).toEqual(JSON.parse(text))
      })
    )
  })

  it("end to end: an int8 beyond 2^53 from the frame text stays exact", () => {
    const frame =
      "{\"schema\":\"public\",\"table\":\"t\",\"commit_timestamp\":\"x\",\"type\":\"INSERT\",\"columns\":[{\"name\":\"id\",\"type\":\"int8\"}],\"record\":{\"id\":9223372036854775807},\"errors\":null}"
    expect(right(PostgresChanges.convertChange(JSON.parse(frame))).new).toEqual({ id: "9223372036854776000" }) // rounded by JSON.parse
    expect(right(PostgresChanges.convertChange(PostgresChanges.parseJsonPreservingPrecision(frame))).new).toEqual({
      id: "9223372036854775807"
    })
    expect(
      right(PostgresChanges.convertChange(PostgresChanges.parseJsonPreservingPrecision(frame), { int8: "bigint" })).new
    )
      .toEqual({ id: 9223372036854775807n })
  })

  it("the pure conversions are the core's", () => {
    expect(PostgresChanges.convertCell).toBe(Convert.convertCell)
    expect(PostgresChanges.convertRow).toBe(Convert.convertRow)
    expect(PostgresChanges.convertRawChange).toBe(Convert.convertRawChange)
    expect(PostgresChanges.parseJsonPreservingPrecision).toBe(Convert.parseJsonPreservingPrecision)
    expect(PostgresChanges.convertCell("int8", "9223372036854775807")).toBe("9223372036854775807")
  })
})

// -----------------------------------------------------------------------------
// exact numbers on the edition's serializer
// -----------------------------------------------------------------------------

describe("withExactPostgresNumbers", () => {
  const serializer = withExactPostgresNumbers(Protocol.makeV1())
  const frame = (event: string, record: string) =>
    `{"join_ref":"1","ref":null,"topic":"realtime:db","event":"${event}","payload":{"ids":[1],"data":{"schema":"public","table":"t","commit_timestamp":"x","type":"INSERT","columns":[{"name":"id","type":"int8"}],"record":${record},"errors":null}}}`

  it("a postgres_changes frame with a long digit run keeps its int8 exact", () => {
    const decoded = right(serializer.decode(frame("postgres_changes", "{\"id\":9223372036854775807}")))
    const data = (decoded.payload as { readonly data: unknown }).data
    expect(right(PostgresChanges.convertChange(data)).new).toEqual({ id: "9223372036854775807" })
  })

  it("other frames are the serializer's own result; failures pass through", () => {
    const plain = Protocol.makeV1()
    const other = frame("broadcast", "{\"id\":9223372036854775807}")
    expect(serializer.decode(other)).toEqual(plain.decode(other))
    const small = frame("postgres_changes", "{\"id\":1}")
    expect(serializer.decode(small)).toEqual(plain.decode(small))
    const broken = serializer.decode("{not json")
    expect(Either.isLeft(broken)).toBe(true)
    expect(left(broken)).toBeInstanceOf(ProtocolError)
    expect(serializer.vsn).toBe(plain.vsn)
    const heartbeat = { joinRef: null, ref: "1", topic: "phoenix", event: "heartbeat", payload: {} }
    expect(serializer.encode(heartbeat)).toEqual(plain.encode(heartbeat))
  })
})
