/**
 * The model card template of `ledgermind model card init`: every field of the Annex IV schema
 * (src/registry/model-card.ts), filled with a "TODO:" sentence that says what belongs there. The
 * template validates as it is, so that a first `model version --card` works before the author has
 * written a word; the TODOs stay visible in the stored card until they are replaced.
 */
import { MODEL_CARD_SCHEMA, type ModelCard, parseModelCard } from "../registry/model-card.ts";

/** What the author already knows when asking for a template; everything else is a TODO. */
export interface ModelCardTemplateOptions {
  name?: string;
  /** The architecture id, as the weights file names it ("mlp-784-64-10"). */
  architecture?: string;
  /** An SPDX licence identifier or expression (default "LicenseRef-TODO", which validates). */
  licence?: string;
  /** What the files say about themselves (parameter count, dtypes, quantization), as hyperparameters. */
  hyperparameters?: Record<string, string | number | boolean>;
  /** Training data sets by name, as a Hugging Face README lists them. */
  datasets?: string[];
}

/** A complete, valid model card whose unknown fields are TODO sentences. Throws ModelCardError on a bad option. */
export function modelCardTemplate(options: ModelCardTemplateOptions = {}): ModelCard {
  return parseModelCard({
    schema: MODEL_CARD_SCHEMA,
    name: options.name ?? "TODO: the model's name",
    version: "1.0.0",
    description: "TODO: what the model does, its inputs and its outputs (Annex IV §1(a)).",
    intendedPurpose: {
      purpose: "TODO: the purpose the model is intended for (Annex IV §1(a)).",
      intendedUsers: ["TODO: who operates the model and who is affected by its outputs"],
      outOfScopeUses: ["TODO: uses the model must not be put to"],
    },
    provider: { name: "TODO: the provider's name", contact: "TODO: an email address or a URL" },
    architecture: options.architecture ?? "TODO: the architecture (for example mlp-784-64-10)",
    dataProvenance: (options.datasets?.length ? options.datasets : [undefined]).map((dataset) => ({
      name: dataset ?? "TODO: the training data set's name",
      uri: dataset
        ? `https://huggingface.co/datasets/${dataset}`
        : "https://example.org/TODO-replace-with-the-data-set-or-give-its-cid",
      description: "TODO: what the data is and what it represents (Annex IV §2(d)).",
      licence: "TODO: the data's licence",
      collection: "TODO: how the data was obtained, labelled and selected.",
      preprocessing: "TODO: cleaning, enrichment and splits applied before training.",
    })),
    training: {
      procedure: "TODO: the training method and the design choices behind it (Annex IV §2(b)).",
      hyperparameters: options.hyperparameters ?? {},
      computeDescription: "TODO: the hardware and the time training took.",
    },
    metrics: [
      {
        name: "accuracy",
        value: 0,
        dataset: "TODO: the held-out data the metric was measured on",
        description: "TODO: how the metric was computed (Annex IV §3).",
      },
    ],
    knownLimitations: ["TODO: where the model is known to fail or to be less accurate"],
    risks: {
      identified: ["TODO: foreseeable risks to health, safety and fundamental rights"],
      foreseeableMisuse: ["TODO: reasonably foreseeable misuse"],
      mitigations: ["TODO: what reduces these risks"],
    },
    humanOversight: {
      measures: ["TODO: how a person oversees the model's outputs (Annex IV §2(e))"],
      interpretationGuidance: "TODO: how to read the outputs, and when to override them.",
    },
    lifecycle: {
      changes: [],
      monitoring: "TODO: the post-market monitoring plan (Annex IV §9).",
    },
    licence: options.licence ?? "LicenseRef-TODO",
  });
}

/** The template as the file `model card init` writes: indented JSON, keys in schema order, a final newline. */
export function modelCardTemplateText(options: ModelCardTemplateOptions = {}): string {
  return `${JSON.stringify(modelCardTemplate(options), null, 2)}\n`;
}
