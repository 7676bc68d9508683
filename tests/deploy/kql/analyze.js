// Parses and analyzes KQL with Kusto.Language, the parser behind Microsoft's own query editors.
// stdin: {"tables": {"name": "(column:type, ...)"}, "queries": {"label": "query text"}}.
// stdout: {"label": {"diagnostics": [{"code", "severity", "message", "start"}], "columns": {"name": "type"}}}:
// every diagnostic the analyzer reports, and the columns of the query's result.
"use strict";
require("@kusto/language-service-next/bridge.min.js");
require("@kusto/language-service-next/Kusto.Language.Bridge.min.js");

const Language = Kusto.Language;

function globalsFor(tables) {
  const symbols = Object.entries(tables).map(([name, schema]) =>
    Language.Symbols.TableSymbol.From(schema).WithName(name),
  );
  const database = new Language.Symbols.DatabaseSymbol.ctor("appinsights", symbols);
  return Language.GlobalState.Default.WithDatabase(database);
}

function analyze(text, globals) {
  const code = Language.KustoCode.ParseAndAnalyze(text, globals);
  const found = code.GetDiagnostics();
  const diagnostics = [];
  for (let i = 0; i < found.Count; i++) {
    const d = found.getItem(i);
    diagnostics.push({ code: d.Code, severity: d.Severity, message: d.Message, start: d.Start });
  }
  const columns = {};
  const result = code.ResultType;
  if (result instanceof Language.Symbols.TableSymbol) {
    for (let i = 0; i < result.Columns.Count; i++) {
      const column = result.Columns.getItem(i);
      columns[column.Name] = column.Type.Name;
    }
  }
  return { diagnostics, columns };
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const { tables, queries } = JSON.parse(input);
  const globals = globalsFor(tables);
  const report = {};
  for (const [label, text] of Object.entries(queries)) {
    report[label] = analyze(text, globals);
  }
  process.stdout.write(JSON.stringify(report));
});
