import { describe, expect, it } from 'vitest';
import {
  abortOnSigint,
  commandHelp,
  numberFlag,
  parseCommandArgs,
  parseShard,
  requireString,
  selectShard,
  type CommandSpec,
} from '../../../src/node/cli/args.js';

const SPEC: CommandSpec = {
  name: 'demo',
  summary: 'a command for the tests',
  positionals: 'SLIDE...',
  flags: {
    out: { type: 'string', help: 'output directory' },
    'lr-magnification': { type: 'string', help: 'low-res level by magnification', default: '5' },
    full: { type: 'boolean', help: 'every patch' },
  },
  run: async () => ({}),
};

describe('CLI arguments', () => {
  it('parses flags and positionals; unknown flags name the help command', () => {
    const a = parseCommandArgs(SPEC, ['a.tif', '--out', 'x', '--full', '--json', 'b.tif']);
    expect(a.positionals).toEqual(['a.tif', 'b.tif']);
    expect(a.values.out).toBe('x');
    expect(a.values.full).toBe(true);
    expect(a.json).toBe(true);
    expect(() => parseCommandArgs(SPEC, ['--nope'])).toThrow(/--nope.*Run 'sasha demo --help'/s);
    expect(() => parseCommandArgs({ ...SPEC, positionals: undefined }, ['a.tif'])).toThrow(/takes no positional arguments, but got: a.tif/);
  });

  it('aligns help in one column, wide enough for the longest flag', () => {
    const lines = commandHelp(SPEC).split('\n');
    const flagLines = lines.slice(lines.indexOf('Flags:') + 1);
    // '  --lr-magnification <LR_MAGNIFICATION>' is 39 characters: the help column starts at 41
    for (const l of flagLines) {
      expect(l.slice(0, 41).trimEnd()).toMatch(/^ {2}--[a-z-]+( <[A-Z_]+>)?$/);
      expect(l[41]).not.toBe(' ');
    }
    expect(flagLines[1]).toBe('  --lr-magnification <LR_MAGNIFICATION>  low-res level by magnification (default 5)');
    expect(flagLines.some((l) => l.startsWith('  --json '))).toBe(true);
  });

  it('checks required strings and numeric ranges with messages that name the flag', () => {
    const a = parseCommandArgs(SPEC, ['--out', '']);
    expect(() => requireString(a, 'out', 'demo')).toThrow(/'sasha demo' needs --out/);
    const b = parseCommandArgs({ ...SPEC, flags: { budget: { type: 'string', help: 'f' } } }, ['--budget', '1.5']);
    expect(() => numberFlag(b, 'budget', 0.2, { min: 0, max: 1, minExclusive: true })).toThrow("Expected --budget to be a number > 0 <= 1, but got '1.5'.");
    expect(numberFlag(parseCommandArgs(SPEC, []), 'budget', 0.2)).toBe(0.2);
  });

  it('shards round-robin and rejects malformed shards', () => {
    const items = ['a', 'b', 'c', 'd', 'e'];
    const shards = [0, 1].map((i) => selectShard(items, parseShard({ values: { shard: `${i}/2` }, positionals: [], json: false })));
    expect(shards).toEqual([
      ['a', 'c', 'e'],
      ['b', 'd'],
    ]);
    for (const bad of ['2/2', '1/0', 'x', '-1/3']) {
      expect(() => parseShard({ values: { shard: bad }, positionals: [], json: false })).toThrow(/--shard to be i\/n/);
    }
  });

  it('turns Ctrl-C into an abort signal, logs once, and removes its handler', () => {
    const logged: string[] = [];
    const before = process.listenerCount('SIGINT');
    const stop = abortOnSigint({ log: (m) => logged.push(m), interactive: false }, 'stopping');
    expect(process.listenerCount('SIGINT')).toBe(before + 1);
    expect(stop.signal.aborted).toBe(false);
    process.emit('SIGINT');
    expect(stop.signal.aborted).toBe(true);
    expect(logged).toEqual(['stopping']);
    stop.dispose();
    expect(process.listenerCount('SIGINT')).toBe(before);
    const other = abortOnSigint({ log: () => undefined, interactive: false }, 'x');
    other.dispose();
    expect(process.listenerCount('SIGINT')).toBe(before);
  });
});
