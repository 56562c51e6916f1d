/**
 * parseSelector, isLabelKey, isLabelValue: Kubernetes label selectors, read and matched as
 * k8s.io/apimachinery's labels.Parse does for `=`, `==`, `!=`, `in`, `notin`, `key` and `!key`.
 */
import { describe, expect, it } from 'vitest';
import { isLabelKey, isLabelValue, parseSelector, SelectorError } from '../../runbook/selector';

/** The SelectorError `text` gets: one line. */
function refusal(text: string): SelectorError {
  try {
    parseSelector(text);
  } catch (err) {
    if (!(err instanceof SelectorError)) throw err;
    expect(err.name).toBe('SelectorError');
    expect(err.message).not.toContain('\n');
    return err;
  }
  throw new Error(`the selector ${JSON.stringify(text)} was accepted`);
}

/** Which of these label sets the selector matches. */
function matching(text: string, clusters: Record<string, Record<string, string>>): string[] {
  const selector = parseSelector(text);
  return Object.entries(clusters)
    .filter(([, labels]) => selector.matches(labels))
    .map(([name]) => name);
}

const fleet = {
  east: { site: 'east', tier: 'prod' },
  west: { site: 'west', tier: 'staging' },
  north: { site: 'north', canary: '' },
  bare: {},
};

const name63 = `a${'b'.repeat(61)}c`;
const name64 = `a${'b'.repeat(62)}c`;

describe('isLabelKey', () => {
  it.each([
    'a',
    'A',
    '9',
    'site',
    'Tier_1',
    'a.b-c_d',
    name63,
    'example.com/tier',
    'skoala-upgrade.io/revision',
    'a/b',
    'x-1.y-2.z/MyName',
    `${'p'.repeat(253)}/a`,
  ])('%j is a label key', (key) => {
    expect(isLabelKey(key)).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['leading "-"', '-a'],
    ['trailing "-"', 'a-'],
    ['leading "."', '.a'],
    ['leading "_"', '_a'],
    ['a 64-character name', name64],
    ['a space', 'a b'],
    ['"="', 'a=b'],
    ['empty prefix', '/a'],
    ['empty name', 'example.com/'],
    ['two slashes', 'a/b/c'],
    ['an uppercase prefix', 'Example.com/tier'],
    ['a prefix with "_"', 'ex_ample.com/tier'],
    ['a prefix label ending in "-"', 'example-.com/tier'],
    ['a prefix of 254 characters', `${'p'.repeat(254)}/a`],
    ['a 64-character name after a prefix', `example.com/${name64}`],
  ])('%s is not a label key (%j)', (_, key) => {
    expect(isLabelKey(key)).toBe(false);
  });
});

describe('isLabelValue', () => {
  it.each(['', 'a', 'prod', 'v1.2.3', 'east_1', 'A-b.C_d', name63, '0'])('%j is a label value', (value) => {
    expect(isLabelValue(value)).toBe(true);
  });

  it.each(['-x', 'x-', '.x', 'x_', 'b c', 'a/b', 'a=b', 'é', name64, ' x'])('%j is not a label value', (value) => {
    expect(isLabelValue(value)).toBe(false);
  });
});

describe('parseSelector: requirements', () => {
  it.each([
    ['a=b', [{ key: 'a', op: 'in', values: ['b'] }]],
    ['a==b', [{ key: 'a', op: 'in', values: ['b'] }]],
    ['a!=b', [{ key: 'a', op: 'notIn', values: ['b'] }]],
    ['a in (x,y)', [{ key: 'a', op: 'in', values: ['x', 'y'] }]],
    ['a notin (x,y)', [{ key: 'a', op: 'notIn', values: ['x', 'y'] }]],
    ['a', [{ key: 'a', op: 'exists' }]],
    ['!a', [{ key: 'a', op: 'notExists' }]],
    ['a=', [{ key: 'a', op: 'in', values: [''] }]],
    ['a!=', [{ key: 'a', op: 'notIn', values: [''] }]],
    ['example.com/tier=prod', [{ key: 'example.com/tier', op: 'in', values: ['prod'] }]],
    [
      'site=east,tier!=prod,canary,!legacy,region in (eu,us)',
      [
        { key: 'site', op: 'in', values: ['east'] },
        { key: 'tier', op: 'notIn', values: ['prod'] },
        { key: 'canary', op: 'exists' },
        { key: 'legacy', op: 'notExists' },
        { key: 'region', op: 'in', values: ['eu', 'us'] },
      ],
    ],
  ])('%j', (text, requirements) => {
    expect(parseSelector(text).requirements).toEqual(requirements);
  });

  it.each([
    ['a in ( x , y )', { key: 'a', op: 'in', values: ['x', 'y'] }],
    ['a in(x,y)', { key: 'a', op: 'in', values: ['x', 'y'] }],
    ['  a   notin   (x)  ', { key: 'a', op: 'notIn', values: ['x'] }],
    ['a = b', { key: 'a', op: 'in', values: ['b'] }],
    ['a == b', { key: 'a', op: 'in', values: ['b'] }],
    ['a != b', { key: 'a', op: 'notIn', values: ['b'] }],
    ['! a', { key: 'a', op: 'notExists' }],
    ['\ta=b\n', { key: 'a', op: 'in', values: ['b'] }],
  ])('whitespace around tokens is tolerated: %j', (text, requirement) => {
    expect(parseSelector(text).requirements).toEqual([requirement]);
  });

  it('whitespace around the commas between requirements is tolerated', () => {
    expect(parseSelector(' a = b ,  c in ( x , y ) , !d ').requirements).toEqual([
      { key: 'a', op: 'in', values: ['b'] },
      { key: 'c', op: 'in', values: ['x', 'y'] },
      { key: 'd', op: 'notExists' },
    ]);
  });

  it('the text is kept, trimmed', () => {
    expect(parseSelector('  site=east , tier!=prod ').text).toBe('site=east , tier!=prod');
  });

  it('as in Kubernetes, "in" and "notin" are values (and keys) where a value is expected', () => {
    expect(parseSelector('a=in').requirements).toEqual([{ key: 'a', op: 'in', values: ['in'] }]);
    expect(parseSelector('a in (in,notin)').requirements).toEqual([{ key: 'a', op: 'in', values: ['in', 'notin'] }]);
  });

  it('as in Kubernetes, a set may hold the empty value: "()", "(x,)" and "(x,,y)"', () => {
    expect(parseSelector('a in ()').requirements).toEqual([{ key: 'a', op: 'in', values: [''] }]);
    expect(parseSelector('a in (x,)').requirements).toEqual([{ key: 'a', op: 'in', values: ['x', ''] }]);
    expect(parseSelector('a notin (x,,y)').requirements).toEqual([{ key: 'a', op: 'notIn', values: ['x', '', 'y'] }]);
  });
});

describe('parseSelector: matching', () => {
  it('a=b and a==b: the label is there with that value', () => {
    expect(matching('site=east', fleet)).toEqual(['east']);
    expect(matching('site==east', fleet)).toEqual(['east']);
    expect(matching('site=south', fleet)).toEqual([]);
  });

  it('a!=b: every cluster but those with that value, including those without the label (as in Kubernetes)', () => {
    expect(matching('site!=east', fleet)).toEqual(['west', 'north', 'bare']);
    expect(matching('tier!=prod', fleet)).toEqual(['west', 'north', 'bare']);
  });

  it('a in (x,y): the label is there with one of the values', () => {
    expect(matching('site in (east,west)', fleet)).toEqual(['east', 'west']);
    expect(matching('tier in (prod)', fleet)).toEqual(['east']);
  });

  it('a notin (x,y): every cluster whose value is not listed, including those without the label', () => {
    expect(matching('site notin (east,west)', fleet)).toEqual(['north', 'bare']);
    expect(matching('tier notin (prod,staging)', fleet)).toEqual(['north', 'bare']);
  });

  it('a: the label is there, whatever its value (even empty)', () => {
    expect(matching('canary', fleet)).toEqual(['north']);
    expect(matching('tier', fleet)).toEqual(['east', 'west']);
  });

  it('!a: the label is not there', () => {
    expect(matching('!canary', fleet)).toEqual(['east', 'west', 'bare']);
    expect(matching('!tier', fleet)).toEqual(['north', 'bare']);
  });

  it('a=: the label is there with the empty value; a cluster without it does not match', () => {
    expect(matching('canary=', fleet)).toEqual(['north']);
    expect(matching('tier=', fleet)).toEqual([]);
  });

  it('commas are AND: every requirement must hold', () => {
    expect(matching('site in (east,west),tier!=staging', fleet)).toEqual(['east']);
    expect(matching('tier,!canary', fleet)).toEqual(['east', 'west']);
    expect(matching('site=east,site=west', fleet)).toEqual([]);
    expect(matching('!tier,!canary', fleet)).toEqual(['bare']);
  });

  it('a comma inside parentheses separates values, not requirements', () => {
    expect(parseSelector('site in (east,west),tier').requirements).toHaveLength(2);
    expect(matching('site in (east,north),tier', fleet)).toEqual(['east']);
  });

  it('prefixed keys', () => {
    const clusters = {
      a: { 'example.com/tier': 'prod' },
      b: { tier: 'prod' },
      c: { 'example.com/tier': 'dev' },
    };
    expect(matching('example.com/tier=prod', clusters)).toEqual(['a']);
    expect(matching('example.com/tier', clusters)).toEqual(['a', 'c']);
    expect(matching('example.com/tier notin (dev)', clusters)).toEqual(['a', 'b']);
  });

  it('keys and values are case-sensitive', () => {
    expect(matching('Site=east', fleet)).toEqual([]);
    expect(matching('site=East', fleet)).toEqual([]);
  });

  it('a label named like an Object.prototype property is looked up in the labels only', () => {
    expect(matching('constructor', { bare: {}, set: { constructor: 'x' } })).toEqual(['set']);
    expect(matching('!toString', { bare: {}, set: { toString: 'x' } })).toEqual(['bare']);
    expect(matching('hasOwnProperty!=x', { bare: {}, set: { hasOwnProperty: 'x' } })).toEqual(['bare']);
  });
});

describe('parseSelector: errors are one SelectorError line naming the problem', () => {
  it.each(['', '   ', '\t\n'])('the empty selector %j', (text) => {
    expect(refusal(text).message).toBe('the selector is empty');
  });

  it.each([
    ['a in (x,y', 'unbalanced "(" in "a in (x,y"'],
    ['a in ((x)', 'unbalanced "(" in "a in ((x)"'],
    ['a in x,y)', 'unbalanced ")" in "a in x,y)"'],
    ['a=b)', 'unbalanced ")" in "a=b)"'],
    [')a(', 'unbalanced ")" in ")a("'],
  ])('unbalanced parentheses: %j', (text, message) => {
    expect(refusal(text).message).toBe(message);
  });

  it.each([
    ['-a=b', '-a'],
    [`${name64}=b`, name64],
    [`example.com/${name64}=b`, `example.com/${name64}`],
    ['Example.com/tier=prod', 'Example.com/tier'],
    ['/a=b', '/a'],
    ['a/b/c', 'a/b/c'],
    ['-a in (x)', '-a'],
    ['!-a', '-a'],
    ['a_', 'a_'],
    ['!a=b', 'a=b'],
  ])('an invalid key: %j', (text, key) => {
    expect(refusal(text).message).toBe(`"${key}" is not a valid label key (in "${text}")`);
  });

  it('a 63-character name is a valid key, a 64-character one is not', () => {
    expect(parseSelector(`${name63}=b`).requirements).toEqual([{ key: name63, op: 'in', values: ['b'] }]);
    expect(refusal(`${name64}=b`).message).toContain(`"${name64}" is not a valid label key`);
  });

  it.each([
    ['a=b c', 'b c'],
    ['a=-x', '-x'],
    ['a!=x-', 'x-'],
    [`a=${name64}`, name64],
    ['a in (x,-y)', '-y'],
    ['a notin (x y)', 'x y'],
    ['a in ((x))', '(x)'],
    ['a==b=c', 'b=c'],
    ['a===b', '=b'],
    ['a=(b)', '(b)'],
  ])('an invalid value: %j', (text, value) => {
    expect(refusal(text).message).toBe(`"${value}" is not a valid label value (in "${text}")`);
  });

  it("a=b=c is refused, as Kubernetes refuses it (\"found '=', expected: ',' or 'end of string'\")", () => {
    expect(refusal('a=b=c').message).toBe('"b=c" is not a valid label value (in "a=b=c")');
    expect(refusal('a!=b=c').message).toBe('"b=c" is not a valid label value (in "a!=b=c")');
  });

  it.each(['a=b,', ',a=b', 'a=b,,c=d', 'a=b, ,c=d', 'a in (x),'])('an empty requirement: %j', (text) => {
    expect(refusal(text).message).toBe(`empty requirement in "${text.trim()}"`);
  });

  it.each(['a b', 'a in x', 'a in (x) y', 'a in (x)y', 'a b=c', 'a notin'])(
    'text that is no requirement is named, with the forms that are: %j',
    (text) => {
      expect(refusal(text).message).toBe(
        `cannot read "${text}" (in "${text}"): use key=value, key!=value, key in (a,b), key notin (a,b), key or !key`
      );
    }
  );

  it('the bad requirement is the one named, among good ones', () => {
    expect(refusal('site=east, tier=-x ,canary').message).toBe(
      '"-x" is not a valid label value (in "site=east, tier=-x ,canary")'
    );
    expect(refusal('site=east,a b').message).toBe(
      'cannot read "a b" (in "site=east,a b"): use key=value, key!=value, key in (a,b), key notin (a,b), key or !key'
    );
  });
});
