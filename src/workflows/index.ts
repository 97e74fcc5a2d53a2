export { provisionVolume } from './provision-volume.js';
export { cleanup } from './cleanup.js';
export { costTracker } from './cost-tracker.js';
export { reconcileCost } from './reconcile-cost.js';
export { checkHost } from './host.js';
export { transfer } from './transfer.js';
export { prewarm } from './prewarm.js';
export { trainingRun } from './training-run.js';
