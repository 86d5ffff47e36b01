// A user's first program, in plain JavaScript with no loader: imports the installed package and registers
// a model on the embedded chain (persisted in ./lib-chain). scripts/check-package.ts copies it into the
// folder where the packed tarball is installed and runs it there with `node`.
import { connect, deployAll, getModel, openRegistry, registerModel } from "ledgermind";

const chain = await connect({ dataDir: "lib-chain" });
try {
  await deployAll(chain);
  const registry = await openRegistry(chain);
  const { modelId } = await registerModel(registry, "plain-node-model");
  const model = await getModel(registry, modelId);
  if (model.name !== "plain-node-model" || model.owner !== chain.accounts[0]?.address) {
    throw new Error(
      `model ${modelId} reads back as ${JSON.stringify(model, (_k, v) => (typeof v === "bigint" ? String(v) : v))}`,
    );
  }
  console.log(JSON.stringify({ modelId: String(modelId), name: model.name, owner: model.owner }));
} finally {
  await chain.close();
}
