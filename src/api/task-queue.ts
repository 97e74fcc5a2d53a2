/** The task queue trainctl's orchestration worker polls unless `TRAINCTL_TASK_QUEUE` says otherwise. */
export const DEFAULT_TASK_QUEUE = 'trainctl';
