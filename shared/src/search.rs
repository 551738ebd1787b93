//! Search text for household lists: names as written, their full pinyin and their pinyin
//! initials, so a worker can type "zs", "zhangsan" or "张三" and find 张三 on a phone keyboard,
//! and a supervisor finds the same households in the console.

use pinyin::ToPinyin;

/// Full pinyin without tones ("zhangsan") and initials ("zs") of a name; other characters
/// (Latin letters, digits) are kept lower-cased in both.
pub fn pinyin_forms(name: &str) -> (String, String) {
    let mut full = String::new();
    let mut initials = String::new();
    for (ch, py) in name.chars().zip(name.to_pinyin()) {
        match py {
            Some(p) => {
                full.push_str(p.plain());
                initials.push_str(p.first_letter());
            }
            None if ch.is_alphanumeric() => {
                full.extend(ch.to_lowercase());
                initials.extend(ch.to_lowercase());
            }
            None => {}
        }
    }
    (full, initials)
}

/// The searchable text of a household: names with their pinyin forms, then other fields,
/// separated by `|` so a query does not match across fields.
pub fn search_text(names: &[&str], other: &[&str]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for name in names {
        let (full, initials) = pinyin_forms(name);
        parts.push(name.to_lowercase());
        parts.push(full);
        parts.push(initials);
    }
    parts.extend(other.iter().map(|s| s.to_lowercase()));
    parts.join("|")
}

/// Normalizes a query the way [`search_text`] normalizes text: trimmed, lower-case, no spaces.
pub fn normalize_query(query: &str) -> String {
    query.trim().to_lowercase().chars().filter(|c| !c.is_whitespace()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_and_full_pinyin_find_chinese_names() {
        assert_eq!(pinyin_forms("张三"), ("zhangsan".to_string(), "zs".to_string()));
        let text = search_text(&["张桂兰", "李明"], &["滨湖小区7栋2单元302室", "13800001111"]);
        for query in ["zgl", "zhangguilan", "张桂", "lm", "302", "13800001111"] {
            assert!(text.contains(&normalize_query(query)), "{query} should match {text}");
        }
        assert!(!text.contains("wxy"));
    }
}
