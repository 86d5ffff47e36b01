// A TypeScript user's program, type-checked (never run) by scripts/check-package.ts in the folder where the
// packed tarball is installed: the package's declarations must carry real types, not `any`. The
// repository's tsconfig.json leaves it out: "ledgermind" resolves only where the package is installed.
import { connect, deployAll, openRegistry, registerModel } from "ledgermind";

const chain = await connect({ dataDir: "lib-chain" });
await deployAll(chain);
const registry = await openRegistry(chain);
const { modelId }: { modelId: bigint } = await registerModel(registry, "typed-model");
// @ts-expect-error: a model's name is a string (with no declarations, registerModel is `any` and this passes)
await registerModel(registry, 42);
console.log(modelId);
