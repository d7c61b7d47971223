// The public surface of the package: every name each entry point exports, read from the built
// type declarations (dist/**/index.d.ts), marked `value` (exists at run time: class, function,
// constant) or `type` (erased: interface, type alias). `npm run api:update` writes it to
// api/public-surface.txt; test/package/public_surface.test.ts compares the build with that file.
// Run: `npm run api:update` (builds, then `tsx scripts/api_surface.ts`).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SURFACE_FILE = path.join(root, 'api', 'public-surface.txt');

/** The entry points of package.json `exports` that have types, as `[subpath, .d.ts file]`. */
export function entryPoints(): [string, string][] {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; exports: Record<string, { import?: { types?: string } } | string> };
  const out: [string, string][] = [];
  for (const [sub, spec] of Object.entries(pkg.exports)) {
    const types = typeof spec === 'string' ? undefined : spec.import?.types;
    if (types) out.push([sub === '.' ? pkg.name : `${pkg.name}/${sub.slice(2)}`, path.join(root, types)]);
  }
  return out;
}

/** One exported name of one entry point. */
export interface SurfaceRow {
  entry: string;
  name: string;
  kind: 'value' | 'type';
  /** Whether its declaration is tagged `@internal`. */
  internal: boolean;
}

/** Every export of every entry point. */
export function readSurface(): SurfaceRow[] {
  const entries = entryPoints();
  const program = ts.createProgram(
    entries.map(([, f]) => f),
    { strict: true, noEmit: true, skipLibCheck: true, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, target: ts.ScriptTarget.ES2022, types: [] },
  );
  const checker = program.getTypeChecker();
  const rows: SurfaceRow[] = [];
  for (const [entry, file] of entries) {
    const source = program.getSourceFile(file);
    if (!source) throw new Error(`Cannot read ${file}: build the package first (npm run build).`);
    const moduleSymbol = checker.getSymbolAtLocation(source)!;
    for (const sym of checker.getExportsOfModule(moduleSymbol)) {
      const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
      const kind = target.flags & ts.SymbolFlags.Value ? 'value' : 'type';
      const internal = (target.declarations ?? []).some((d) => ts.getJSDocTags(d).some((t) => t.tagName.text === 'internal'));
      rows.push({ entry, name: sym.name, kind, internal });
    }
  }
  rows.sort((a, b) => (a.entry === b.entry ? a.name.localeCompare(b.name) : 0));
  return rows;
}

/** The text of api/public-surface.txt. */
export function formatSurface(rows: SurfaceRow[]): string {
  const lines = [
    '# The public surface of sasha-wsi: what each entry point exports (value = exists at run time, type = types only).',
    '# Generated from the built .d.ts files by `npm run api:update`; test/package/public_surface.test.ts checks it.',
  ];
  let entry: string | null = null;
  for (const r of rows) {
    if (r.entry !== entry) {
      entry = r.entry;
      const n = rows.filter((x) => x.entry === entry);
      lines.push('', `## ${entry} (${n.filter((x) => x.kind === 'value').length} values, ${n.length} names)`);
    }
    lines.push(`${r.kind} ${r.name}`);
  }
  return lines.join('\n') + '\n';
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const text = formatSurface(readSurface());
  if (process.argv.includes('--check')) {
    const saved = readFileSync(SURFACE_FILE, 'utf8');
    if (saved !== text) {
      console.error('api/public-surface.txt differs from the build. Run `npm run api:update` and commit the file if the change is deliberate.');
      process.exit(1);
    }
  } else {
    writeFileSync(SURFACE_FILE, text);
    console.log(`wrote ${path.relative(root, SURFACE_FILE)}`);
  }
}
