//! Tokenizers: a byte-level BPE trained on the task vocabulary (for `--init`), or a model
//! directory's `tokenizer.json`; and the ChatML frame Qwen2 models are trained with.

use std::path::Path;

use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
    SplitDelimiterBehavior, Tokenizer, TokenizerBuilder, TokenizerImpl,
};

use crate::TrainError;

/// End of text; also the padding token.
pub const END_OF_TEXT: &str = "<|endoftext|>";
/// Opens a ChatML turn.
pub const IM_START: &str = "<|im_start|>";
/// Closes a ChatML turn; the end-of-sequence token of an assistant reply.
pub const IM_END: &str = "<|im_end|>";

/// Qwen2's pre-tokenizer split (its `tokenizer.json`, and what transformers' `Qwen2Tokenizer`
/// builds whatever the file says): contractions, letter runs, single digits, punctuation runs,
/// newlines, spaces.
pub const QWEN2_SPLIT_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The class transformers loads a triad-train tokenizer as. transformers ≥ 5 builds this class
/// for any `qwen2` model whatever `tokenizer_config.json` names, from the file's vocabulary and
/// merges but with Qwen2's own normaliser and pre-tokenizer; [`TextCodec::train`] uses exactly
/// those, so every loader (transformers 4 and 5, `tokenizers`, candle) gives the same ids.
pub const TOKENIZER_CLASS: &str = "Qwen2Tokenizer";

/// Qwen2's pre-tokenizer: [`QWEN2_SPLIT_REGEX`] isolated, then byte-level without its own regex.
fn qwen2_pre_tokenizer() -> Result<PreTokenizerWrapper, TrainError> {
    let split = Split::new(
        SplitPattern::Regex(QWEN2_SPLIT_REGEX.into()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(tok_err)?;
    let bytes = ByteLevel::new(false, false, false);
    Ok(Sequence::new(vec![split.into(), bytes.into()]).into())
}

/// A tokenizer with the ids the trainer needs.
#[derive(Clone)]
pub struct TextCodec {
    tokenizer: Tokenizer,
    /// Where a reply ends (`<|im_end|>`).
    pub eos: u32,
    /// Padding id (`<|endoftext|>`).
    pub pad: u32,
}

impl std::fmt::Debug for TextCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextCodec")
            .field("vocab", &self.vocab_size())
            .field("eos", &self.eos)
            .finish()
    }
}

fn tok_err(e: impl std::fmt::Display) -> TrainError {
    TrainError::Tokenizer(e.to_string())
}

impl TextCodec {
    /// Wrap a tokenizer that knows the ChatML special tokens.
    pub fn new(tokenizer: Tokenizer) -> Result<Self, TrainError> {
        let id = |t: &str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| TrainError::Tokenizer(format!("the tokenizer has no {t} token")))
        };
        let eos = id(IM_END)?;
        let pad = id(END_OF_TEXT)?;
        Ok(TextCodec {
            tokenizer,
            eos,
            pad,
        })
    }

    /// Load `tokenizer.json` from a model directory.
    pub fn load(dir: &Path) -> Result<Self, TrainError> {
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            return Err(TrainError::Tokenizer(format!(
                "{} not found",
                path.display()
            )));
        }
        TextCodec::new(Tokenizer::from_file(&path).map_err(tok_err)?)
    }

    /// Train a byte-level BPE of `vocab_size` entries on `texts` (deterministic for the same
    /// texts in the same order), with Qwen2's NFC normaliser and pre-tokenizer.
    pub fn train(texts: &[String], vocab_size: usize) -> Result<Self, TrainError> {
        let specials = [END_OF_TEXT, IM_START, IM_END]
            .iter()
            .map(|t| AddedToken::from(t.to_string(), true))
            .collect();
        let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
            .show_progress(false)
            .vocab_size(vocab_size)
            .min_frequency(2)
            .special_tokens(specials)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build()
            .into();
        let mut tokenizer: TokenizerImpl<
            ModelWrapper,
            NormalizerWrapper,
            PreTokenizerWrapper,
            PostProcessorWrapper,
            DecoderWrapper,
        > = TokenizerBuilder::new()
            .with_model(BPE::default().into())
            .with_normalizer(Some(NFC.into()))
            .with_pre_tokenizer(Some(qwen2_pre_tokenizer()?))
            .with_post_processor(None)
            .with_decoder(Some(ByteLevel::default().into()))
            .build()
            .map_err(tok_err)?;
        tokenizer
            .train(&mut trainer, texts.iter())
            .map_err(tok_err)?;
        let tokenizer: Tokenizer = tokenizer.into();
        TextCodec::new(tokenizer)
    }

    /// Write `tokenizer.json` (and a `tokenizer_config.json` with the ChatML template) into `dir`;
    /// `model_max_length` is the model's `max_position_embeddings`.
    pub fn save(&self, dir: &Path, model_max_length: usize) -> Result<(), TrainError> {
        let path = dir.join("tokenizer.json");
        self.tokenizer.save(&path, false).map_err(tok_err)?;
        let config = serde_json::json!({
            "tokenizer_class": TOKENIZER_CLASS,
            "bos_token": null,
            "eos_token": IM_END,
            "pad_token": END_OF_TEXT,
            "model_max_length": model_max_length,
            "chat_template": CHATML_JINJA,
        });
        let path = dir.join("tokenizer_config.json");
        std::fs::write(&path, serde_json::to_string_pretty(&config).expect("json"))
            .map_err(|e| TrainError::io(&path, e))
    }

    /// Vocabulary size including special tokens.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// Token ids of `text` (special tokens written in the text are recognised).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TrainError> {
        Ok(self
            .tokenizer
            .encode_fast(text, false)
            .map_err(tok_err)?
            .get_ids()
            .to_vec())
    }

    /// Text of `ids`, special tokens dropped.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TrainError> {
        self.tokenizer.decode(ids, true).map_err(tok_err)
    }
}

/// The ChatML template as Jinja, for `tokenizer_config.json`.
const CHATML_JINJA: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// A prompt's messages rendered in ChatML with the assistant turn opened. A prompt that is
/// already a rendered chat string (the paper's style: one message starting `<|im_start|>`) is
/// used as it is.
pub fn chat_prompt<'a>(messages: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let messages: Vec<_> = messages.into_iter().collect();
    if let [(_, content)] = messages.as_slice()
        && content.starts_with(IM_START)
    {
        return content.to_string();
    }
    let mut text = String::new();
    for (role, content) in messages {
        text.push_str(IM_START);
        text.push_str(role);
        text.push('\n');
        text.push_str(content);
        text.push_str(IM_END);
        text.push('\n');
    }
    text.push_str(IM_START);
    text.push_str("assistant\n");
    text
}

/// The supervised target for a reference answer: a reasoning block holding `trace` (empty for
/// the answer-only target), then the answer, then the end of the turn. When the prompt
/// pre-fills `<think>`, the target starts after it.
pub fn sft_target(answer: &str, trace: &str, prefilled: bool) -> String {
    let open = if prefilled { "" } else { "<think>" };
    let reasoning = if trace.is_empty() {
        String::new()
    } else {
        format!("\n{trace}")
    };
    format!("{open}{reasoning}\n</think>\n<answer>\n{answer}\n</answer>{IM_END}")
}
