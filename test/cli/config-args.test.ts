// Trainer options from a YAML file and flags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigArgs } from '../../src/cli/config-args.js';

test('--config YAML merged with flags; flags win; kebab-case becomes snake_case', () => {
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-cfg-'));
  try {
    const f = join(dir, 'dpo.yaml');
    writeFileSync(f, 'model_name_or_path: runs/sft\nbeta: 0.1\nloss_type: sigmoid\nlearning_rate: 5.0e-7\nlora_target_modules: [q_proj, v_proj]\n');
    const c = parseConfigArgs(['--config', f, '--beta', '0.2', '--output-dir=runs/dpo', '--packing', '--no-disable_tqdm', '--max_steps', '10']);
    assert.deepEqual(c, { model_name_or_path: 'runs/sft', beta: 0.2, loss_type: 'sigmoid', learning_rate: 5e-7, lora_target_modules: ['q_proj', 'v_proj'], output_dir: 'runs/dpo', packing: true, disable_tqdm: false, max_steps: 10 });
    writeFileSync(f, 'beta: 0.1\nloss_type: [sigmoid\n');
    assert.throws(() => parseConfigArgs(['--config', f]), /dpo\.yaml:\d+: /);
    writeFileSync(f, '- a\n- b\n');
    assert.throws(() => parseConfigArgs(['--config', f]), /must hold a mapping/);
    assert.throws(() => parseConfigArgs(['stray']), /unexpected argument 'stray'/);
    assert.throws(() => parseConfigArgs(['--config', join(dir, 'missing.yaml')]), /missing\.yaml/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
