/**
 * Contract errors as sentences. A revert carries only a selector and ABI-encoded arguments, and a call
 * that reverts inside another contract (the oracle refusing `CropInsurance.assess`) carries the inner
 * contract's error, which the outer ABI does not declare: so revert data is decoded against the errors
 * of every Ledgermind contract at once, then phrased with amounts in MIND and times as dates.
 * Pure: no I/O.
 */
import {
  type Abi,
  type AbiParameter,
  decodeErrorResult,
  formatUnits,
  type Hex,
  parseAbi,
  toFunctionSelector,
} from "viem";
import * as contracts from "./generated/contracts.ts";

type AbiError = Extract<Abi[number], { type: "error" }>;

/** Every custom error of every generated contract, once per selector. */
export const CONTRACT_ERRORS: readonly AbiError[] = (() => {
  const bySelector = new Map<string, AbiError>();
  for (const value of Object.values(contracts)) {
    if (typeof value !== "object" || !("abi" in value)) continue;
    for (const item of value.abi as readonly { type: string }[]) {
      if (item.type !== "error") continue;
      const error = item as AbiError;
      const selector = toFunctionSelector(
        `${error.name}(${error.inputs.map((i: AbiParameter) => i.type).join(",")})`,
      );
      if (!bySelector.has(selector)) bySelector.set(selector, error);
    }
  }
  return [...bySelector.values()];
})();

/** Solidity's own errors, which viem decodes without an ABI: `require` messages and panics. */
const SOLIDITY_ERRORS = parseAbi(["error Error(string message)", "error Panic(uint256 reason)"]);

/** A decoded contract error: its name and its arguments by name (by position where unnamed). */
export interface ContractErrorData {
  name: string;
  args: Record<string, unknown>;
}

/** Decodes revert data against every Ledgermind error (and Solidity's Error(string) and Panic). */
export function decodeContractError(data: Hex): ContractErrorData | undefined {
  try {
    const { errorName, args, abiItem } = decodeErrorResult({ abi: CONTRACT_ERRORS, data });
    const inputs = abiItem && "inputs" in abiItem ? abiItem.inputs : [];
    return { name: errorName, args: namedArgs(inputs, args ?? []) };
  } catch {
    return undefined;
  }
}

/**
 * Names the positional arguments of a decoded error. Several errors share a name across contracts with
 * other arguments (`NoCommit(requestId, operator)`, `NoCommit(taskId, round, account)`): the count tells them apart.
 */
export function errorArgsByName(name: string, args: readonly unknown[]): Record<string, unknown> {
  const item = [...CONTRACT_ERRORS, ...SOLIDITY_ERRORS].find(
    (e) => e.name === name && e.inputs.length === args.length,
  );
  return namedArgs(item?.inputs ?? [], args);
}

function namedArgs(inputs: readonly AbiParameter[], args: readonly unknown[]): Record<string, unknown> {
  return Object.fromEntries(args.map((value, i) => [inputs[i]?.name || String(i), value]));
}

const mind = (v: unknown) => `${formatUnits(BigInt(v as bigint), 18)} MIND`;
const shares = (v: unknown) => `${formatUnits(BigInt(v as bigint), 18)} shares`;
const date = (v: unknown) => new Date(Number(v) * 1000).toISOString();
const s = (v: unknown) => String(v);

/** LearningTasks' round phases, in the order of its `Phase` enum. */
const PHASES = ["none", "commit", "score commit", "reveal", "finalize", "aggregate", "done", "expired"];
const phase = (v: unknown) => PHASES[Number(v)] ?? `phase ${s(v)}`;

/** LearningTasks' `InvalidParams(field)`: the 1-based position in `TaskParams` and its bounds. */
const TASK_PARAM_RULES = [
  "a constructor address is zero",
  "modelId",
  "baseVersion",
  "format",
  "licence",
  "rewardPerRound must be above 0",
  "rounds must be from 1 to MAX_ROUNDS",
  "minTrainerStake must be above 0",
  "minValidatorStake must be above 0",
  "commitWindow must be from 1 to MAX_WINDOW blocks",
  "scoreWindow must be from 1 to MAX_WINDOW blocks",
  "revealWindow must be from 1 to MAX_WINDOW blocks",
  "aggregateWindow must be from 1 to MAX_WINDOW blocks",
  "exitWindow must be from MIN_EXIT_WINDOW to MAX_WINDOW blocks",
  "slashBps must be at most 10000",
  "minScore must be at most SCORE_SCALE",
  "relativeBps must be at most 10000",
  "quorumBps must be above 5000 and at most 10000",
  "maxTrainers must be from 1 to MAX_TRAINERS_CAP",
  "maxValidators must be from MIN_VALIDATORS to MAX_VALIDATORS_CAP",
];

/** Solidity's panic codes (0x11: arithmetic overflow...). */
const PANICS: Record<number, string> = {
  1: "an assertion failed",
  17: "an arithmetic operation overflowed",
  18: "a division by zero",
  33: "a value out of an enum's range",
  34: "a malformed storage byte array",
  49: "pop on an empty array",
  50: "an array index out of bounds",
  65: "too much memory allocated",
  81: "a call to an uninitialized function",
};

type Sentence = (a: Record<string, unknown>) => string;

/** One sentence per error name; where one name has several signatures, the arguments present tell which. */
export const ERROR_SENTENCES: Readonly<Record<string, Sentence>> = {
  // Solidity's own
  Error: (a) => `the contract refused: ${s(a.message)}`,
  Panic: (a) => `the contract panicked: ${PANICS[Number(a.reason)] ?? `code ${s(a.reason)}`}`,
  // CropInsurance
  AlreadyAssessed: (a) => `region ${s(a.region)}, season ${s(a.season)} is already assessed`,
  AlreadyExpired: (a) =>
    `region ${s(a.region)}, season ${s(a.season)} expired unscored; its premiums are refunded`,
  AssessmentClosed: (a) =>
    `the assessment window of region ${s(a.region)}, season ${s(a.season)} closed at ${date(a.deadline)}: it can only be expired now`,
  AssessmentPending: (a) =>
    `oracle request ${s(a.requestId)} is still open: finalize it on the oracle first (anyone may, after its reveal window)`,
  AssessmentStillOpen: (a) =>
    `region ${s(a.region)}, season ${s(a.season)} may be assessed until ${date(a.deadline)}: it cannot expire before`,
  ConditionsAlreadyReported: (a) =>
    `the conditions of region ${s(a.region)}, season ${s(a.season)} are already reported`,
  InsufficientCapital: (a) =>
    `the pool cannot take on or pay ${mind(a.needed)}: only ${mind(a.available)} is unreserved`,
  InsufficientShares: (a) => `withdrawing ${shares(a.wanted)}, but only ${shares(a.held)} are held`,
  InvalidEndTime: (a) =>
    `a season ending at ${date(a.endTime)} leaves no sales window: it must end later than now plus the pool's sales-close period`,
  InvalidParams: (a) =>
    a.field === undefined
      ? "a parameter is out of range"
      : `task parameter ${s(a.field)} is out of range: ${TASK_PARAM_RULES[Number(a.field)] ?? "unknown field"}`,
  NoConditions: (a) => `no conditions are reported for region ${s(a.region)}, season ${s(a.season)} yet`,
  NotAssessed: (a) =>
    `region ${s(a.region)}, season ${s(a.season)} has no score yet and has not expired: assess it, or expire it after its assessment window`,
  NotReporter: (a) => `${s(a.caller)} is not the pool's reporter: only the reporter reports conditions`,
  NothingToAssess: (a) => `no policy in region ${s(a.region)}, season ${s(a.season)} needs an assessment`,
  NothingToClaim: (a) =>
    a.account === undefined ? "nothing to claim" : `${s(a.account)} has no rewards to claim in the task`,
  NothingToCollect: () => "the oracle holds no refund for this pool",
  OnlyOracle: (a) => `only the oracle may call back; ${s(a.caller)} is not it`,
  PolicyNotActive: (a) => `policy ${s(a.policyId)} is already settled or refunded`,
  SalesClosed: (a) =>
    `policies for season ${s(a.season)} are no longer sold: sales closed at ${date(a.salesClose)}`,
  SeasonAlreadyOpen: (a) => `season ${s(a.season)} is already open`,
  SeasonNotEnded: (a) => `season ${s(a.season)} has not ended: it ends at ${date(a.endTime)}`,
  SeasonNotOpen: (a) => `season ${s(a.season)} was never opened`,
  TooFewShares: (a) =>
    `funding would mint ${shares(a.shares)}, fewer than the ${shares(a.minShares)} asked for (the share price moved)`,
  UnknownPolicy: (a) => `there is no policy ${s(a.policyId)}`,
  UnknownRequest: (a) => `there is no live request ${s(a.requestId)}`,
  WrongFeatureCount: (a) => `the model takes ${s(a.expected)} features, not ${s(a.given)}`,
  WrongWeights: (a) => `the answer came from weights ${s(a.given)}, not the model version's ${s(a.expected)}`,
  ZeroAddress: (a) =>
    a.token === undefined
      ? "an address that must be set is zero"
      : `the token (${s(a.token)}) or the registry (${s(a.registry)}) is the zero address`,
  ZeroAmount: () => "the amount, the shares it buys or what the shares are worth is zero",
  // InferenceOracle
  AlreadyCommitted: (a) =>
    a.requestId !== undefined
      ? `operator ${s(a.operator)} already committed to request ${s(a.requestId)}`
      : `${s(a.account)} already committed in round ${s(a.round)} of task ${s(a.taskId)}`,
  AlreadyRegistered: (a) => `${s(a.operator)} already operates this model version`,
  AlreadyRevealed: (a) =>
    a.requestId !== undefined
      ? `operator ${s(a.operator)} already revealed its answer to request ${s(a.requestId)}`
      : `${s(a.account)} already revealed its scores in round ${s(a.round)} of task ${s(a.taskId)}`,
  AmountTooLarge: (a) => `${mind(a.amount)} does not fit in 96 bits`,
  CallbackGasTooHigh: (a) =>
    `a callback gas limit of ${s(a.callbackGasLimit)} is above the most allowed, ${s(a.maxCallbackGas)}`,
  CommitClosed: (a) => `the commit window of request ${s(a.requestId)} ended at block ${s(a.deadline)}`,
  DeprecatedModelVersion: (a) =>
    `model ${s(a.modelId)} version ${s(a.version)} is deprecated: it takes no new specs, operators or requests`,
  EmptyInputSize: () => "a model spec needs an input size above 0",
  EmptyWindow: (a) =>
    `a window of zero blocks (commit ${s(a.commitWindow)}, reveal ${s(a.revealWindow)}): operators could never answer`,
  InsufficientGas: (a) => `finalize needs ${s(a.needed)} gas for the callback; ${s(a.left)} was left`,
  InsufficientStake: (a) =>
    `operator ${s(a.operator)} has ${mind(a.stake)} at stake, below the minimum ${mind(a.minStake)} (it was slashed)`,
  InvalidCommitment: () => "the commitment is zero or a reserved value",
  InvalidInput: () => "a request needs exactly one of an inline input and an input CID",
  InvalidMinResponses: (a) =>
    `minResponses ${s(a.minResponses)} must be from 1 to maxOperators (${s(a.maxOperators)})`,
  InvalidSignature: (a) => `signature ${s(a.index)} is malformed, malleable or unrecoverable`,
  MaxOperatorsTooHigh: (a) => `maxOperators ${s(a.maxOperators)} is above the cap of ${s(a.cap)}`,
  ModelSpecAlreadySet: (a) =>
    `the input size of model ${s(a.modelId)} version ${s(a.version)} is already declared; it is fixed once set`,
  ModelSpecNotSet: (a) =>
    `model ${s(a.modelId)} version ${s(a.version)} has no declared input size: its owner runs \`ledgermind oracle spec\` first`,
  NoCommit: (a) =>
    a.requestId !== undefined
      ? `operator ${s(a.operator)} never committed to request ${s(a.requestId)}`
      : `${s(a.account)} made no commitment in round ${s(a.round)} of task ${s(a.taskId)}`,
  NotEnoughOperators: (a) =>
    `the model version has ${s(a.registered)} active operator(s); a request needs ${s(a.needed)}: start more with \`ledgermind oracle serve\``,
  NotModelOwner: (a) => `${s(a.caller)} neither owns model ${s(a.modelId)} nor is approved for it`,
  NotOperator: (a) => `${s(a.account)} does not operate this model version`,
  NothingToWithdraw: (a) => `${s(a.account)} has nothing to withdraw`,
  OperatorBusy: (a) =>
    `operator ${s(a.operator)} has ${s(a.pending)} unsettled request(s); it may exit once they are settled`,
  QuorumNotMet: (a) => `the report has ${s(a.signers)} signature(s); ${s(a.needed)} are needed`,
  ReportAfterReveal: (a) =>
    `request ${s(a.requestId)} already has ${s(a.reveals)} reveal(s): once reveals start, only they decide`,
  RequestClosed: (a) => `request ${s(a.requestId)} is settled or past its reveal deadline`,
  RequestNotOpen: (a) => `request ${s(a.requestId)} is not open`,
  ResultNotReady: (a) => `request ${s(a.requestId)} has no result (still open, or failed)`,
  RevealClosed: (a) => `the reveal window of request ${s(a.requestId)} ended at block ${s(a.deadline)}`,
  RevealMismatch: (a) =>
    a.requestId !== undefined
      ? `operator ${s(a.operator)}'s output and salt do not match its commitment to request ${s(a.requestId)}`
      : `${s(a.account)}'s scores and salt do not match its commitment in round ${s(a.round)} of task ${s(a.taskId)}`,
  RevealNotOpen: (a) => `reveals of request ${s(a.requestId)} open after block ${s(a.commitDeadline)}`,
  SignerCountMismatch: (a) =>
    `the report lists ${s(a.signers)} signer(s) but carries ${s(a.signatures)} signature(s)`,
  SlashTooHigh: (a) => `slashBps ${s(a.slashBps)} is above ${s(a.max)}`,
  StakeQuorumNotMet: (a) =>
    `the report's signers hold ${mind(a.signedStake)}, not more than two thirds of the request's ${mind(a.stakeBase)}`,
  StakeTooLow: (a) => `a stake of ${mind(a.stake)} is below the minimum ${mind(a.minStake)}`,
  TooEarly: (a) =>
    `request ${s(a.requestId)} can be finalized after block ${s(a.revealDeadline)}, or once every committed operator revealed`,
  TooManyOperators: (a) => `the model version already has its ${s(a.maxOperators)} operators`,
  UnknownModelVersion: (a) => `the registry has no version ${s(a.version)} of model ${s(a.modelId)}`,
  UnsortedSigners: (a) =>
    `signer ${s(a.index)} is not above the previous one: signers must ascend, each once`,
  WrongInputShape: (a) => `the input has ${s(a.got)} value(s); the model version takes ${s(a.expected)}`,
  WrongSigner: (a) =>
    `signature ${s(a.index)} recovers to ${s(a.recovered)}, not to the listed ${s(a.listed)}`,
  // Test consumers
  Refused: (a) => `the consumer refused the callback of request ${s(a.requestId)}`,
  // LearningTasks
  AlreadyProposed: (a) =>
    `aggregate ${s(a.digest)} was already proposed in round ${s(a.round)} of task ${s(a.taskId)}: attest it instead`,
  AlreadyVoted: (a) =>
    `${s(a.validator)} already proposed or attested an aggregate in round ${s(a.round)} of task ${s(a.taskId)}`,
  ContractNotApproved: (a) =>
    `the owner of model ${s(a.modelId)} has not approved the learning contract to add its versions`,
  AccessNotLost: (a) =>
    `${s(a.account)} still has access to dataset ${s(a.datasetId)}: its stake stays in task ${s(a.taskId)} until the round ends, when members may leave`,
  DatasetAccessRequired: (a) =>
    `task ${s(a.taskId)} trains on dataset ${s(a.datasetId)} and ${s(a.account)} has no access to it now: buy it with \`ledgermind data buy ${s(a.datasetId)}\` or ask its owner for a grant`,
  DatasetsFixed: (a) =>
    `the datasets of task ${s(a.taskId)} are fixed: they were named already, or its first round started`,
  DidNotReveal: (a) =>
    `${s(a.validator)} revealed no scores in round ${s(a.round)} of task ${s(a.taskId)}, so it does not vote on the aggregate`,
  EmptyDigest: () => "the digest is zero",
  ExitWindowOpen: (a) =>
    `round ${s(a.round)} of task ${s(a.taskId)} ended recently: members may leave until block ${s(a.opensAfter)}; the next round starts after it`,
  DuplicateDataset: (a) => `dataset ${s(a.datasetId)} is named twice`,
  InvalidDatasetCount: (a) => `a task names 1 to ${s(a.max)} datasets, not ${s(a.count)}`,
  InvalidSamples: () => "an update of zero samples",
  NoRoundsLeft: (a) => `task ${s(a.taskId)} ran all its rounds`,
  NotEnoughTrainers: (a) =>
    `task ${s(a.taskId)} has ${s(a.active)} active trainer(s); a round needs ${s(a.needed)}: join more with \`ledgermind fl join\``,
  NotEnoughValidators: (a) =>
    `task ${s(a.taskId)} has ${s(a.active)} active validator(s); a round needs ${s(a.needed)}: join more with \`ledgermind fl join --as validator\``,
  NotTaskCreator: (a) => `only the creator of task ${s(a.taskId)} may do this; ${s(a.caller)} is not it`,
  NotTaskDataset: (a) => `task ${s(a.taskId)} does not name dataset ${s(a.datasetId)}`,
  NotTrainer: (a) => `${s(a.account)} is not an active trainer of task ${s(a.taskId)}`,
  NotValidator: (a) => `${s(a.account)} is not an active validator of task ${s(a.taskId)}`,
  NothingToScore: (a) => `round ${s(a.round)} of task ${s(a.taskId)} has no update to score`,
  ProposalPending: (a) =>
    `your aggregate of round ${s(a.round)} of task ${s(a.taskId)} awaits its quorum: leave once the aggregate window ends`,
  RoleConflict: (a) => `${s(a.account)} is already an active member of task ${s(a.taskId)} in the other role`,
  RoundInProgress: (a) =>
    `round ${s(a.round)} of task ${s(a.taskId)} is neither finalized nor expired: members are locked in until it is`,
  RoundNotLatest: (a) => `round ${s(a.round)} is not the latest round of task ${s(a.taskId)}`,
  ScoreOutOfRange: (a) => `score ${s(a.index)} is ${s(a.score)}, above the scale`,
  TaskAlreadyClosed: (a) => `task ${s(a.taskId)} is closed: no joins or rounds`,
  TooManyMembers: (a) => `the role already has its ${s(a.maxMembers)} members in task ${s(a.taskId)}`,
  UnknownProposal: (a) =>
    `nobody proposed aggregate ${s(a.digest)} in round ${s(a.round)} of task ${s(a.taskId)}`,
  UnknownRound: (a) => `task ${s(a.taskId)} has no round ${s(a.round)}`,
  UnknownTask: (a) => `there is no task ${s(a.taskId)}`,
  WrongPhase: (a) =>
    `round ${s(a.round)} of task ${s(a.taskId)} is in its ${phase(a.actual)} phase; this needs the ${phase(a.expected)} phase`,
  WrongScoreCount: (a) =>
    `the reveal has ${s(a.words)} packed word(s); the round's updates need ${s(a.expectedWords)}`,
  // ModelRegistry
  EmptyReason: () => "a deprecation needs a reason",
  EmptyWeightsDigest: () => "a version needs a weights digest",
  InvalidAttestationSignature: (a) => `the attestation's ECDSA signature is not ${s(a.attester)}'s`,
  InvalidPqKeyLength: (a) => `an ML-DSA-65 public key of ${s(a.length)} bytes (it takes 1952)`,
  InvalidPqSignatureLength: (a) => `an ML-DSA-65 signature of ${s(a.length)} bytes (it takes 3309)`,
  InvalidVerdict: () => "the verdict is not one the registry knows",
  PqKeyAlreadyBound: (a) => `${s(a.attester)} already bound another ML-DSA key`,
  PqKeyNotBound: (a) => `${s(a.attester)} has no ML-DSA key bound`,
  TooManyEntries: (a) =>
    `${s(a.datasets)} dataset(s) and ${s(a.metrics)} metric(s): a version takes at most 64 of each`,
  UnknownAttestation: (a) => `model ${s(a.modelId)} version ${s(a.version)} has no attestation ${s(a.index)}`,
  UnknownModel: (a) => `model ${s(a.modelId)} does not exist`,
  UnknownParentVersion: (a) => `the parent ${s(a.parentModel)}@${s(a.parentVersion)} does not exist`,
  UnknownVersion: (a) => `model ${s(a.modelId)} has no version ${s(a.version)}`,
  VersionAlreadyDeprecated: (a) => `model ${s(a.modelId)} version ${s(a.version)} is already deprecated`,
  // NodeDirectory
  EmptyUrl: () => "the URL is empty (an entry is cleared by withdrawing it)",
  ForbiddenCharacter: (a) => `the URL holds a space or a control character at byte ${s(a.position)}`,
  NoEndpoint: (a) => `${s(a.node)} announces no URL`,
  TooManyAddresses: (a) =>
    `${s(a.count)} addresses asked for at once; the directory answers at most ${s(a.max)}`,
  UnsupportedScheme: () => "the URL must start with http:// or https:// (lower case) and name a host",
  UrlTooLong: (a) => `the URL is ${s(a.length)} bytes long; the directory takes at most ${s(a.max)}`,
  // DataMarket
  AlgorithmAlreadyAllowed: (a) =>
    `algorithm ${s(a.algorithm)} is already allowed on dataset ${s(a.datasetId)}`,
  AlgorithmNotAllowed: (a) =>
    `algorithm ${s(a.algorithm)} is not allowed on dataset ${s(a.datasetId)}: its owner allows it with \`ledgermind data allow\``,
  BadReceiptSignature: (a) =>
    `the receipt's signature recovers to ${s(a.recovered)}, not to the dataset's provider ${s(a.provider)}`,
  CostAboveMax: (a) =>
    `the access costs ${mind(a.cost)}, more than the ${mind(a.maxCost)} agreed to (the price rose): check the price and buy again`,
  EmptyMetadata: () => "a dataset needs a metadata CID",
  ExpiryNotInFuture: (a) =>
    `a grant until ${date(a.expiresAt)} is not in the future (the chain's time is ${date(a.nowTime)})`,
  InvalidPeriod: (a) => `an access period of ${s(a.period)} s: it must be from 1 s to ${s(a.max)} s`,
  MarketFeeTooHigh: (a) => `a market fee of ${s(a.feeBps)} basis points is above the cap of ${s(a.max)}`,
  MetadataCidTooLong: (a) =>
    `the metadata CID is ${s(a.length)} bytes long; the market takes at most ${s(a.max)}`,
  NoAccess: (a) =>
    `${s(a.account)} has no access to dataset ${s(a.datasetId)} now (never bought or granted, expired, or revoked)`,
  NoGrant: (a) =>
    `${s(a.account)} holds no live grant on dataset ${s(a.datasetId)} to revoke (paid access cannot be revoked)`,
  NotDatasetOwner: (a) => `${s(a.caller)} does not own dataset ${s(a.datasetId)}: only its owner may do this`,
  NotForSale: (a) => `dataset ${s(a.datasetId)} is not for sale (price 0): its owner only grants access`,
  NotProvider: (a) =>
    `${s(a.caller)} is not the provider of dataset ${s(a.datasetId)}: only it records receipts`,
  ReceiptAlreadyRecorded: (a) => `a receipt for request ${s(a.requestDigest)} is already recorded`,
  RoyaltyTooHigh: (a) => `a royalty of ${s(a.royaltyBps)} basis points is above the cap of ${s(a.max)}`,
  UnknownDataset: (a) => `there is no dataset ${s(a.datasetId)}`,
  ZeroPeriods: () => "a purchase needs at least one period",
  // OpenZeppelin, as inherited by MindToken, ModelRegistry and the pools
  CheckpointUnorderedInsertion: () => "a vote checkpoint was written out of order",
  ECDSAInvalidSignature: () => "the signature is invalid",
  ECDSAInvalidSignatureLength: (a) => `a signature of ${s(a.length)} bytes (it takes 65)`,
  ECDSAInvalidSignatureS: (a) => `the signature's s value ${s(a.s)} is malleable (too high)`,
  ERC20ExceededSafeSupply: (a) =>
    `the supply would reach ${mind(a.increasedSupply)}, above the cap ${mind(a.cap)}`,
  ERC20InsufficientAllowance: (a) =>
    `${s(a.spender)} may spend ${mind(a.allowance)} but needs ${mind(a.needed)}: approve more first`,
  ERC20InsufficientBalance: (a) =>
    `${s(a.sender)} holds ${mind(a.balance)} but needs ${mind(a.needed)}: send it MIND with \`ledgermind token transfer\``,
  ERC20InvalidApprover: (a) => `${s(a.approver)} cannot approve (the zero address)`,
  ERC20InvalidReceiver: (a) => `${s(a.receiver)} cannot receive MIND (the zero address)`,
  ERC20InvalidSender: (a) => `${s(a.sender)} cannot send MIND (the zero address)`,
  ERC20InvalidSpender: (a) => `${s(a.spender)} cannot be approved (the zero address)`,
  ERC2612ExpiredSignature: (a) => `the permit expired at ${date(a.deadline)}`,
  ERC2612InvalidSigner: (a) => `the permit is signed by ${s(a.signer)}, not by the owner ${s(a.owner)}`,
  ERC5805FutureLookup: (a) => `votes at ${s(a.timepoint)} are in the future (the clock is at ${s(a.clock)})`,
  ERC6372InconsistentClock: () => "the token's clock is inconsistent",
  ERC721IncorrectOwner: (a) => `token ${s(a.tokenId)} is owned by ${s(a.owner)}, not ${s(a.sender)}`,
  ERC721InsufficientApproval: (a) => `${s(a.operator)} is not approved for token ${s(a.tokenId)}`,
  ERC721InvalidApprover: (a) => `${s(a.approver)} cannot approve`,
  ERC721InvalidOperator: (a) => `${s(a.operator)} cannot be an operator`,
  ERC721InvalidOwner: (a) => `${s(a.owner)} cannot own a token`,
  ERC721InvalidReceiver: (a) => `${s(a.receiver)} cannot receive the token`,
  ERC721InvalidSender: (a) => `${s(a.sender)} cannot send the token`,
  ERC721NonexistentToken: (a) => `token ${s(a.tokenId)} does not exist`,
  InvalidAccountNonce: (a) => `${s(a.account)}'s nonce is ${s(a.currentNonce)}: the signature is for another`,
  InvalidShortString: () => "a short string is malformed",
  OwnableInvalidOwner: (a) => `${s(a.owner)} cannot be the owner`,
  OwnableUnauthorizedAccount: (a) => `${s(a.account)} is not the owner`,
  ReentrancyGuardReentrantCall: () => "a reentrant call was refused",
  SafeCastOverflowedUintDowncast: (a) => `${s(a.value)} does not fit in ${s(a.bits)} bits`,
  SafeERC20FailedOperation: (a) => `a transfer of token ${s(a.token)} failed`,
  StringTooLong: (a) => `the string "${s(a.str)}" is too long`,
  VotesExpiredSignature: (a) => `the delegation signature expired at ${date(a.expiry)}`,
  // zero-knowledge fulfilment (InferenceOracle, ModelRegistry, the test verifiers)
  ProofNeedsInlineInput: (a) =>
    `request ${s(a.requestId)} gave its input as a CID, which the contract never sees: it cannot be settled by a proof, only by commit and reveal or a report`,
  InputMismatch: (a) => `the input sent with the proof is not request ${s(a.requestId)}'s input`,
  NoZkVerifier: (a) =>
    `model ${s(a.modelId)}@${s(a.version)} has no zk verifier in the registry: its owner runs "ledgermind zk build" first`,
  InvalidProof: (a) =>
    `the verifier refused the proof for request ${s(a.requestId)} (another answer, other weights, another prover or a malformed proof); the request stays open`,
  InvalidWeightsCommitment: (a) =>
    `the weights commitment ${s(a.commitment)} is zero or not below the BN254 field modulus`,
  VerifierHasNoCode: (a) => `${s(a.verifier)} holds no contract code: deploy the verifier first`,
  ZkVerifierAlreadySet: (a) =>
    `model ${s(a.modelId)}@${s(a.version)} already has a zk verifier: it is set once, like the version`,
  Malformed: () => "the verifier refused a malformed proof",
  // ZkInferenceVerifier
  AnswerOutOfField: (a) =>
    `the answer ${s(a.answer)} is beyond half the BN254 field: it would stand for another answer in the proof`,
  CommitmentOutOfField: (a) =>
    `the weights commitment ${s(a.commitment)} is not a BN254 field element (it must be below the field modulus)`,
  EmptyInput: () => "the input has no values: a proof of inference needs at least one",
  InputBitsOutOfRange: (a) =>
    `a circuit's input bits must be from 1 to 64, got ${s(a.inputBits)} (zk build --input-bits)`,
  InputOutOfRange: (a) =>
    `input value ${s(a.index)} (${s(a.value)}) is out of the circuit's range: |value| must be below 2^inputBits (the verifier's inputBits)`,
  ZeroVerifier: () => "the Groth16 verifier address is zero",
};

/** The generic sentence of an error without its own: its name and its arguments. */
export function genericSentence(name: string, args: Record<string, unknown>): string {
  const list = Object.entries(args)
    .map(([k, v]) => `${/^\d+$/.test(k) ? "" : `${k}=`}${s(v)}`)
    .join(", ");
  return `the contract refused: ${name}(${list})`;
}

/** A sentence for a decoded error, naming the error at the end so that it can be looked up. */
export function describeContractError(name: string, args: Record<string, unknown>): string {
  const sentence = ERROR_SENTENCES[name];
  if (!sentence) return genericSentence(name, args);
  if (name === "Error" || name === "Panic") return sentence(args);
  return `${sentence(args)} (${name})`;
}
