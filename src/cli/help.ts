/**
 * The CLI's help conventions, applied to every command once all are registered: an example on each
 * page, global options shown under subcommands, and defaults written one way, `(default: X)`.
 * Placeholders are upper case (`<FILE>`, `<MODEL@VERSION>`), as in the prose and the error messages.
 */
import type { Command } from "commander";

/** Examples by command path (`""` is the program itself); every command has at least one (tested). */
export const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  "": ["ledgermind demo", "ledgermind --json model show 1", "ledgermind model register --help"],
  chain: ["ledgermind chain --port 8545", "ledgermind --rpc http://127.0.0.1:8545 deploy"],
  "chain repair": ["ledgermind chain repair", "ledgermind --data-dir hospital chain repair"],
  deploy: ["ledgermind deploy", "ledgermind --rpc http://127.0.0.1:8545 deploy"],
  "advance-time": ["ledgermind advance-time 86400"],
  token: ["ledgermind token balance 1", "ledgermind token transfer 1 250"],
  "token balance": [
    "ledgermind token balance",
    "ledgermind token balance 0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  ],
  "token transfer": [
    "ledgermind token transfer 1 250",
    "ledgermind token transfer 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 0.5 --account 1",
  ],
  blob: [
    "ledgermind blob put weights.lmq",
    "ledgermind blob get CID -o copy.lmq",
    "ledgermind blob serve --port 8600",
    "ledgermind blob fetch CID --from http://10.0.0.2:8600 -o copy.lmq",
  ],
  "blob put": ["ledgermind blob put weights.lmq"],
  "blob get": ["ledgermind blob get bafkreih... -o copy.lmq"],
  "blob serve": [
    "ledgermind blob serve",
    "ledgermind --data-dir hospital blob serve --host 0.0.0.0 --port 8600",
  ],
  "blob fetch": [
    "ledgermind blob fetch bafkreih... --from http://10.0.0.2:8600,http://10.0.0.3:8600 -o update.lmq",
  ],
  model: ["ledgermind model register --name digits", "ledgermind model show 1"],
  "model card": ["ledgermind model card init card.json --name digits --weights w.lmq --licence MIT"],
  "model card init": ["ledgermind model card init card.json --name digits --weights w.lmq --licence MIT"],
  "model train": [
    "ledgermind model train --out w.lmq --data-out digits.bin",
    "ledgermind model train --task yield --out yield.lmq",
  ],
  "model import": ["ledgermind model import --onnx mlp.onnx --out mlp.lmq"],
  "model export": ["ledgermind model export w.lmq --onnx w.onnx"],
  "model register": ['ledgermind model register --name "digits classifier"'],
  "model version": [
    "ledgermind model version 1 --weights weights.lmq --metric accuracy=0.91 --licence MIT",
    "ledgermind model version 3 --weights ./llama-3-8b --licence llama3",
  ],
  "model show": ["ledgermind model show 1", "ledgermind model show 1 --version 2"],
  "model lineage": ["ledgermind model lineage 1 --version 2"],
  "model attest": ["ledgermind model attest 1 --version 1 --claim audit.pdf --verdict pass --account 2"],
  "model verify": [
    "ledgermind model verify weights.lmq --model 1 --version 1",
    "ledgermind model verify ./llama-3-8b --model 3 --version 1",
    "ledgermind model verify ./llama-3-8b --bundle ./llama-3-8b/model.sig --key key.pub.pem",
  ],
  "model sign": [
    "ledgermind model sign ./llama-3-8b --key key.pem",
    "ledgermind model sign ./llama-3-8b --key key.pem --model 3 --version 1 --account 2",
  ],
  "model deprecate": ['ledgermind model deprecate 1 --version 1 --reason "superseded by version 2"'],
  oracle: ["ledgermind oracle spec --model 1@1 --input-size 4", "ledgermind oracle show 1"],
  "oracle spec": ["ledgermind oracle spec --model 1@1 --input-size 4"],
  "oracle serve": [
    "ledgermind oracle serve --model 1@1 --account 3 --fund-from 0",
    "ledgermind oracle serve --model 1@1 --account 3 --zk-secret ~/.ledgermind/zk/model-1-v1.json",
    "ledgermind oracle serve --model 1@1 --account 3 --listen 127.0.0.1:8601 --peer http://10.0.0.2:8601,http://10.0.0.3:8601",
  ],
  zk: ["ledgermind zk build --model 1@1", "ledgermind zk prove --model 1@1 --input 0.55,0.35,0.3,0.8"],
  "zk build": [
    "ledgermind zk build --model 1@1",
    "ledgermind zk build --model 1@1 --ptau powersOfTau28_hez_final_16.ptau --account 2",
    "ledgermind zk build --model 2@1 --weights constant --input-bits 20",
  ],
  "zk prove": [
    "ledgermind zk prove --model 1@1 --input 0.55,0.35,0.3,0.8 --account 3 --out proof.json",
    "ledgermind zk prove --model 1@1 --input 0.55,0.35,0.3,0.8 --prover 0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  ],
  "zk verify": ["ledgermind zk verify --proof proof.json"],
  "oracle request": ["ledgermind oracle request --model 1@1 --input 0.1,0.2,0.3,0.4 --wait"],
  "oracle show": ["ledgermind oracle show 1"],
  node: [
    "ledgermind node --config node.yaml",
    "ledgermind node --config /etc/ledgermind/node.yaml",
    "ledgermind --rpc http://127.0.0.1:8545 node endpoints",
  ],
  devnet: [
    "ledgermind devnet --nodes 5",
    "ledgermind devnet --nodes 8 --rounds 3 --alpha 0.1 --dir consortium",
    "ledgermind --rpc http://127.0.0.1:8545 devnet --nodes 4",
  ],
  "node announce": ["ledgermind --rpc http://127.0.0.1:8545 node announce http://10.0.0.2:8600 --account 2"],
  "node endpoints": [
    "ledgermind --rpc http://127.0.0.1:8545 node endpoints",
    "ledgermind node endpoints 0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  ],
  insurance: ["ledgermind insurance create --model 1@1", "ledgermind insurance status"],
  "insurance create": ["ledgermind insurance create --model 1@1 --premium 0.1"],
  "insurance fund": ["ledgermind insurance fund 5000"],
  "insurance season": ["ledgermind insurance season 1 --ends-in 3888000"],
  "insurance buy": ["ledgermind insurance buy --region 3 --season 1 --coverage 100 --account 4"],
  "insurance report": [
    "ledgermind insurance report --region 3 --season 1 --conditions rainfallDeficit=0.6,heatDays=20,soilMoisture=0.12,growingDegreeDays=1800",
  ],
  "insurance assess": ["ledgermind insurance assess --region 3 --season 1"],
  "insurance expire": ["ledgermind insurance expire --region 3 --season 1"],
  "insurance collect-refunds": ["ledgermind insurance collect-refunds"],
  "insurance settle": ["ledgermind insurance settle 1"],
  "insurance claim": ["ledgermind insurance claim --account 4"],
  "insurance status": ["ledgermind insurance status"],
  data: ["ledgermind data publish --metadata wards.json --price 5 --period 30d", "ledgermind data list"],
  "data publish": [
    "ledgermind data publish --metadata wards.json --price 5 --period 30d --account 1",
    "ledgermind data publish --metadata records.json --account 1",
  ],
  "data list": ["ledgermind data list", "ledgermind --json data list"],
  "data show": ["ledgermind data show 1"],
  "data buy": [
    "ledgermind data buy 1 --periods 2 --account 2",
    "ledgermind data buy 1 --max-cost 10 --account 2",
  ],
  "data grant": ["ledgermind data grant 1 3 --for 30d --account 1"],
  "data revoke": ["ledgermind data revoke 1 3 --account 1"],
  "data serve": [
    "ledgermind --rpc http://127.0.0.1:8545 data serve --dataset 1 --csv records.csv --divide-by 255 --account 1",
  ],
  "data compute": [
    "ledgermind data compute --dataset 1 --model 2@1 --epochs 2 --out update.lmq --account 2",
    "ledgermind data compute --dataset 1 --model 2@1 --kind evaluate --out metrics.json --account 2",
  ],
  "data access": [
    "ledgermind data access 1 3",
    "ledgermind data access 1 0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  ],
  "data allow": [
    "ledgermind data allow 1 --model 2@1 --account 1",
    "ledgermind data allow 1 --digest 0x9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 --account 1",
  ],
  fl: ["ledgermind fl simulate --clients 10 --byzantine 2 --attack sign-flip", "ledgermind fl status 1"],
  "fl create": ["ledgermind fl create --model 1@1 --rounds 5 --reward 100"],
  "fl join": ["ledgermind fl join 1 --as trainer --stake 10 --account 1"],
  "fl start": ["ledgermind fl start 1"],
  "fl status": ["ledgermind fl status 1"],
  "fl claim": ["ledgermind fl claim 1 --as trainer --account 1"],
  "fl release": ["ledgermind fl release 1 --dataset 2 --account 1"],
  "fl leave": ["ledgermind fl leave 1 --as trainer --account 1"],
  "fl withdraw": ["ledgermind fl withdraw --account 1"],
  "fl evaluate": ["ledgermind fl evaluate --grid reduced --workers 2"],
  "fl simulate": [
    "ledgermind fl simulate --clients 10 --byzantine 2 --attack sign-flip --strategy median --rounds 5",
    "ledgermind --json fl simulate --in-memory --rounds 3",
  ],
  demo: ["ledgermind demo", "ledgermind demo --part insurance"],
};

/** A command's path below the program: "model show". */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

/** Every command under `root`, `root` first. */
export function allCommands(root: Command): Command[] {
  return [root, ...root.commands.flatMap((c) => allCommands(c))];
}

/** Applies the conventions above to every command under `program`. */
export function finishHelp(program: Command): void {
  for (const cmd of allCommands(program)) {
    const examples = EXAMPLES[commandPath(cmd)];
    if (examples) cmd.addHelpText("after", `\nExamples:\n${examples.map((e) => `  $ ${e}`).join("\n")}`);
    for (const option of cmd.options) {
      // commander quotes string defaults ("0.08"); prose defaults are written without quotes.
      if (typeof option.defaultValue === "string" && option.defaultValueDescription === undefined)
        option.defaultValueDescription = option.defaultValue;
    }
    for (const argument of cmd.registeredArguments) {
      if (typeof argument.defaultValue === "string" && argument.defaultValueDescription === undefined)
        argument.defaultValueDescription = argument.defaultValue;
    }
  }
}
