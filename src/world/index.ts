// The lock-picking world: a generated assistant world (requests, answer styles, gold labels, corpus and
// demonstrations, critique → revision transcripts and comparisons) that a tiny model learns from scratch.
export * from './vocabulary.js';
export * from './requests.js';
export * from './responses.js';
export * from './gold.js';
export * from './principles.js';
export * from './templates.js';
export * from './critiques.js';
export * from './build.js';
