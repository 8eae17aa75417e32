// Tests that use aws-local-stepfunctions directly need what src/local/launch-machine.ts loads for it.
import '../../src/local/polyfills';
