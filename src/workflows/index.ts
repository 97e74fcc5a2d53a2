export { provisionVolume } from './provision-volume.js';
