// Tensor methods that read left to right where they help a formula — `h.sub(r).mul(beta)`, `d.logsigmoid().neg()`
// — each the free function of the same name (both stay). Installed on Tensor's prototype when this module loads
// (the ops import tensor.ts, so tensor.ts cannot import them itself); the package root and every module that uses
// the methods import it.
import { Tensor } from '../tensor.js';
import { add, div, exp, log, logsigmoid, mean, mul, neg, relu, scale, sigmoid, square, sub, sum, type TensorLike } from './elementwise.js';

declare module '../tensor.js' {
  interface Tensor {
    add(b: TensorLike): Tensor;
    sub(b: TensorLike): Tensor;
    mul(b: TensorLike): Tensor;
    div(b: TensorLike): Tensor;
    /** times a number */
    scale(s: number): Tensor;
    neg(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    square(): Tensor;
    relu(): Tensor;
    sigmoid(): Tensor;
    logsigmoid(): Tensor;
    sum(dims?: number | number[], keepdim?: boolean): Tensor;
    mean(dims?: number | number[], keepdim?: boolean): Tensor;
  }
}

const p = Tensor.prototype;
p.add = function (b) {
  return add(this, b);
};
p.sub = function (b) {
  return sub(this, b);
};
p.mul = function (b) {
  return mul(this, b);
};
p.div = function (b) {
  return div(this, b);
};
p.scale = function (s) {
  return scale(this, s);
};
p.neg = function () {
  return neg(this);
};
p.exp = function () {
  return exp(this);
};
p.log = function () {
  return log(this);
};
p.square = function () {
  return square(this);
};
p.relu = function () {
  return relu(this);
};
p.sigmoid = function () {
  return sigmoid(this);
};
p.logsigmoid = function () {
  return logsigmoid(this);
};
p.sum = function (dims, keepdim) {
  return sum(this, dims, keepdim);
};
p.mean = function (dims, keepdim) {
  return mean(this, dims, keepdim);
};
