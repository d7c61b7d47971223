/** Records episodes of a policy on the fake environment into a rollout buffer. */
import { createRng } from '../../src/core/index.js';
import { RolloutBuffer, type ZoomPolicy } from '../../src/ppo/index.js';
import { FakeZoomEnv, type FakeEnvOptions } from './fake_env.js';

export function recordEpisodes(
  envOptions: FakeEnvOptions,
  policy: ZoomPolicy,
  numEpisodes: number,
  seed = 0,
): { buffer: RolloutBuffer; histories: Float32Array[][]; env: FakeZoomEnv } {
  const env = new FakeZoomEnv(envOptions);
  const buffer = new RolloutBuffer();
  const rng = createRng(seed);
  const histories: Float32Array[][] = [];
  for (let e = 0; e < numEpisodes; e++) {
    let { observation } = env.reset({ seed: seed * 100 + e });
    policy.startEpisode(observation);
    buffer.startEpisode(observation);
    for (;;) {
      const actionMask = observation.actionMask.slice();
      const choice = policy.selectAction(observation, { mode: 'sample', rng });
      const res = env.step(choice.action);
      buffer.recordStep({ actionMask, action: choice.action, logProb: choice.logProb, reward: res.reward, changes: res.info });
      policy.observeStep(res.info);
      if (res.terminated) {
        buffer.finishEpisode({ terminated: true, truncated: false });
        break;
      }
      observation = res.observation;
    }
    histories.push(env.history);
  }
  return { buffer, histories, env };
}
