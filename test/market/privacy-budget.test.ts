import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { gaussianNoiseMultiplier } from "../../src/learning/privacy.ts";
import { NonceLog, ReplayedNonceError } from "../../src/market/nonces.ts";
import {
  type BudgetState,
  jobNoiseMultiplier,
  PrivacyBudgetExhaustedError,
  PrivacyLedger,
  refund,
  spend,
  spentOf,
} from "../../src/market/privacy-budget.ts";

const TMP = mkdtempSync(join(tmpdir(), "ledgermind-budget-"));
after(() => rmSync(TMP, { recursive: true, force: true }));
const alice = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const bob = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const policy = { epsilonBudget: 1, delta: 1e-5 };

describe("privacy budget (pure)", () => {
  it("spends per (dataset, buyer) and refuses the job that would pass the budget", () => {
    let s: BudgetState = {};
    s = spend(s, 1n, alice, 0.3, policy);
    s = spend(s, 1n, alice, 0.3, policy);
    s = spend(s, 1n, alice, 0.3, policy);
    assert.equal(spentOf(s, 1n, alice), 0.9);
    assert.throws(() => spend(s, 1n, alice, 0.2, policy), PrivacyBudgetExhaustedError);
    // Exactly to the budget is allowed: micro-units make 0.9 + 0.1 equal 1, not 1.0000000000000002.
    s = spend(s, 1n, alice, 0.1, policy);
    assert.equal(spentOf(s, 1n, alice), 1);
    assert.throws(() => spend(s, 1n, alice, 0.000001, policy), /exhausted: 1 of 1 epsilon spent/);
    // Another buyer, or another dataset, has its own budget.
    assert.equal(spentOf(spend(s, 1n, bob, 0.5, policy), 1n, bob), 0.5);
    assert.equal(spentOf(spend(s, 2n, alice, 0.5, policy), 2n, alice), 0.5);
    assert.equal(spentOf(refund(s, 1n, alice, 0.4), 1n, alice), 0.6);
  });

  it("a job draws the noise of the Gaussian mechanism under replace adjacency (sensitivity 2C)", () => {
    assert.equal(jobNoiseMultiplier(0.5, policy), gaussianNoiseMultiplier(0.5, 1e-5, "replace"));
    assert.equal(jobNoiseMultiplier(0.5, policy), 2 * gaussianNoiseMultiplier(0.5, 1e-5, "add-remove"));
  });
});

describe("persisted state", () => {
  it("budget refill by restart: a new ledger on the same file keeps what was spent", () => {
    const file = join(TMP, "budgets.json");
    new PrivacyLedger(file).spend(3n, alice, 0.7, policy);
    const reopened = new PrivacyLedger(file);
    assert.equal(reopened.spent(3n, alice), 0.7);
    assert.throws(() => reopened.spend(3n, alice, 0.4, policy), PrivacyBudgetExhaustedError);
  });

  it("nonce replay after restart: a used nonce stays used in a new log on the same file", () => {
    const file = join(TMP, "nonces.log");
    const log = new NonceLog(file);
    log.use(alice, 1n);
    assert.throws(() => log.use(alice, 1n), ReplayedNonceError);
    log.use(bob, 1n);
    const reopened = new NonceLog(file);
    assert.equal(reopened.has(alice, 1n), true);
    assert.equal(reopened.has(bob, 1n), true);
    assert.equal(reopened.has(alice, 2n), false);
    assert.throws(() => reopened.use(alice, 1n), ReplayedNonceError);
  });

  it("a line torn by a crash is dropped and the next nonce starts on its own line", () => {
    const file = join(TMP, "torn.log");
    new NonceLog(file).use(alice, 5n);
    appendFileSync(file, `${bob.toLowerCase()} 12`); // "123" cut short: never acknowledged
    const log = new NonceLog(file);
    assert.equal(log.has(bob, 12n), false);
    log.use(bob, 123n);
    const reopened = new NonceLog(file);
    assert.equal(reopened.has(bob, 123n), true);
    assert.equal(reopened.has(alice, 5n), true);
  });
});
