/**
 * The API a user's script imports (`import { connect, volume } from 'trainctl'`): typed start /
 * handle / query / update / cancel for each workflow family. See `src/api/`.
 *
 * @module
 */
export * from './api/index.js';
