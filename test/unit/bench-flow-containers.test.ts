import { flowRunIdOfAnyTask } from '../../src/bench/flow-containers';

describe('flowRunIdOfAnyTask', () => {
  const id = '01a24229-7964-7b23-8339-f7fd04138e1c';

  it("reads the launcher's task group", () => {
    expect(flowRunIdOfAnyTask({ group: `prefect-flow-run:${id}` })).toBe(id);
  });

  it("reads the worker's PREFECT__FLOW_RUN_ID container override", () => {
    expect(
      flowRunIdOfAnyTask({
        group: 'family:prefect',
        overrides: {
          containerOverrides: [
            { name: 'prefect', environment: [{ name: 'PREFECT__FLOW_RUN_ID', value: id }] },
          ],
        },
      }),
    ).toBe(id);
  });

  it('finds none in a task of neither', () => {
    expect(
      flowRunIdOfAnyTask({ group: 'service:web', overrides: { containerOverrides: [] } }),
    ).toBeUndefined();
  });
});
