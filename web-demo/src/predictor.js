// One runtime bound to its artifact's layouts: PyTorch-layout tensors in and out, like the model's own API.
import { fromArtifact, toArtifact } from './artifactIo.js';
import { medianLatencyMs } from './timing.js';

export class Predictor {
  // runtime: TfjsModel or OrtModel; artifact: metadata.artifacts.<name>.
  constructor(runtime, artifact, meta) {
    this.runtime = runtime;
    this.artifact = artifact;
    this.meta = meta;
  }

  get bytes() {
    return this.runtime.bytes;
  }

  // torchInputs: {name: typed array in PyTorch layout}. Resolves to {output name: Float32Array}.
  async predict(torchInputs) {
    const outputs = await this.runtime.run(toArtifact(this.artifact, this.meta, torchInputs));
    return fromArtifact(this.artifact, outputs);
  }

  // Times the runtime alone on artifact-layout inputs prepared once, so layout work in JS is not counted.
  async latencyMs(torchInputs, runs) {
    const inputs = toArtifact(this.artifact, this.meta, torchInputs);
    return medianLatencyMs(() => this.runtime.run(inputs), runs);
  }
}
