// Every differentiable op, for `import { ops } from 'alignkit'`.
export * from './elementwise.js';
export * from './norm.js';
export * from './attention.js';
export * from './matmul.js';
import './methods.js';
