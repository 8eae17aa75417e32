import { describeLaunchFailure } from '../../src/launch/failure';

describe('describeLaunchFailure', () => {
  it("reports a Lambda error in the worker's words, from AWS's JSON Cause", () => {
    const cause = JSON.stringify({
      errorType: 'JobConfigurationError',
      errorMessage: "Job variable 'cpu' must be an integer",
      trace: [],
    });
    expect(describeLaunchFailure({ Error: 'JobConfigurationError', Cause: cause })).toMatchObject({
      action: 'crash',
      message:
        "Failed to submit flow run to infrastructure: JobConfigurationError: Job variable 'cpu' must be an integer",
    });
  });

  it('names the missing cluster', () => {
    const f = describeLaunchFailure(
      { Error: 'ECS.ClusterNotFoundException', Cause: 'Cluster not found.' },
      'prod',
    );
    expect(f.message).toBe(
      "Failed to submit flow run to infrastructure: ClusterNotFoundException: Failed to run ECS task, cluster 'prod' not found. Confirm that the cluster is configured in your region.",
    );
  });

  it('reports RunTask failures[] after the retries, with the capacity rewrite', () => {
    const f = describeLaunchFailure({
      Error: 'AmazonECS.Unknown',
      Cause: JSON.stringify([{ Arn: 'arn:x', Reason: 'Capacity is unavailable at this time.' }]),
    });
    expect(f.message).toBe(
      'Failed to submit flow run to infrastructure: RuntimeError: Failed to run ECS task due to a capacity provider error: Capacity is unavailable at this time.',
    );
    const other = describeLaunchFailure({
      Error: 'AmazonECS.Unknown',
      Cause: JSON.stringify([{ Reason: 'MISSING' }]),
    });
    expect(other.message).toBe(
      'Failed to submit flow run to infrastructure: RuntimeError: Failed to run ECS task: MISSING',
    );
  });

  it('reports a task that failed to start from the .sync Cause', () => {
    const task = {
      StopCode: 'TaskFailedToStart',
      StoppedReason: 'CannotPullContainerError: image not found',
      Containers: [{ Name: 'prefect' }],
    };
    expect(describeLaunchFailure({ Error: 'States.TaskFailed', Cause: JSON.stringify(task) })).toMatchObject({
      action: 'crash',
      message:
        'Failed to submit flow run to infrastructure: TaskFailedToStart: The image does not exist; check the `image` job variable and that the tag is pushed (CannotPullContainerError: image not found)',
    });
  });

  it('reports a non-zero exit of the flow container like the ECS observer', () => {
    const task = {
      StopCode: 'EssentialContainerExited',
      Containers: [{ Name: 'prefect', ExitCode: 1 }],
      Overrides: { ContainerOverrides: [{ Name: 'prefect', Command: ['prefect', 'flow-run', 'execute'] }] },
    };
    expect(describeLaunchFailure({ Error: 'States.TaskFailed', Cause: JSON.stringify(task) }).message).toBe(
      "The following containers stopped with a non-zero exit code: ['prefect']: the flow container 'prefect' exited with code 1; read the container's logs for the error",
    );
  });

  it('does nothing for a task failure that was only a sidecar', () => {
    const task = {
      Containers: [
        { Name: 'prefect', ExitCode: 0 },
        { Name: 'log_router', ExitCode: 137 },
      ],
      Overrides: { ContainerOverrides: [{ Name: 'prefect', Command: ['prefect', 'flow-run', 'execute'] }] },
    };
    expect(describeLaunchFailure({ Error: 'States.TaskFailed', Cause: JSON.stringify(task) }).action).toBe(
      'none',
    );
  });

  it('cancels when the deployment is gone', () => {
    const f = describeLaunchFailure({
      Error: 'DeploymentNotFoundError',
      Cause: 'Deployment 1234 no longer exists, cancelled run.',
    });
    expect(f).toMatchObject({
      action: 'cancel',
      message: 'Deployment 1234 no longer exists, cancelled run.',
    });
  });

  it('rewrites network parameter errors', () => {
    const f = describeLaunchFailure({
      Error: 'ECS.InvalidParameterException',
      Cause: 'Error retrieving subnet information for [subnet-1]: The subnet ID does not exist',
    });
    expect(f.message).toContain(
      'InvalidParameterException: Failed to run ECS task due to a network configuration error',
    );
  });
});
