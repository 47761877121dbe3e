// Keeps the man pages (packaging/man/*.scd) in step with the code, so that a key, a
// command or an option cannot be added without being documented, nor removed while
// its documentation lives on:
//   - vigil.yaml(5) describes every key the config loader accepts, as config::known_keys()
//     lists them from the tables the loader reads each section from, and no other;
//   - vigilctl(1) describes every command of ctl_commands() with the same synopsis as
//     its usage line, and every option that vigilctl's help lists;
//   - vigild(8) describes every option vigild's main() accepts and every signal the
//     daemon handles.
// vigild's options and signals are read from its source text: they have no table to ask.
#include <doctest/doctest.h>

#include <cctype>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "args.h"
#include "loader.h"

namespace {

std::string source_path(std::string_view relative) {
  return std::string(VIGIL_SOURCE_DIR) + "/" + std::string(relative);
}

std::string read_text(std::string_view relative) {
  const std::string path = source_path(relative);
  std::ifstream in(path, std::ios::binary);
  INFO("reading " << path);
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The text of the section `# TITLE` of an scdoc page, up to the next section.
std::string section(const std::string& page, const std::string& title) {
  const std::string heading = "\n# " + title + "\n";
  const auto start = page.find(heading);
  INFO("no section '# " << title << "' in the man page");
  REQUIRE(start != std::string::npos);
  const auto body = start + heading.size();
  const auto end = page.find("\n# ", body);
  return page.substr(body, end == std::string::npos ? std::string::npos : end - body);
}

// The entries of a definition list written as `*key* (type)` lines, as the keys found at
// each depth of indentation (tabs): the form vigil.yaml(5) uses for every config key.
std::set<std::string> key_terms(const std::string& text, int depth) {
  std::set<std::string> out;
  const std::regex term("^(\\t*)\\*([a-z_]+)\\* \\(");
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_search(line, m, term) && static_cast<int>(m[1].length()) == depth) {
      out.insert(m[2].str());
    }
  }
  return out;
}

// The description of the depth-0 entry `*key* (type)` of a section: its lines up to the
// next unindented line.
std::string entry_body(const std::string& text, const std::string& key) {
  const std::string term = "\n*" + key + "* (";
  const auto start = text.find(term);
  if (start == std::string::npos) return "";
  const auto body = text.find('\n', start + 1);
  std::string out;
  std::istringstream lines(text.substr(body + 1));
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line[0] != '\t') break;
    out += line + "\n";
  }
  return out;
}

// The unindented lines of a section that begin with a bold word: the terms of a
// definition list, such as `*start* [*--no-wait*] _NAME_...|*all*`.
std::vector<std::string> term_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.size() > 1 && line[0] == '*') out.push_back(line);
  }
  return out;
}

// A term line as the reader sees it: without scdoc's bold (*) and underline (_) marks.
std::string plain(const std::string& scd) {
  std::string out;
  for (std::size_t i = 0; i < scd.size(); ++i) {
    const char c = scd[i];
    if (c == '*') continue;
    if (c == '_') {
      const bool word_before = i > 0 && std::isalnum(static_cast<unsigned char>(scd[i - 1]));
      const bool word_after =
          i + 1 < scd.size() && std::isalnum(static_cast<unsigned char>(scd[i + 1]));
      if (!(word_before && word_after)) continue;
    }
    out += c;
  }
  return out;
}

std::string first_word(const std::string& s) {
  return s.substr(0, s.find(' '));
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v) {
    if (x == s) return true;
  }
  return false;
}

// The options named in a help text: `-x` and `--long` at the start of its option lines.
std::set<std::string> help_options(const std::string& help) {
  std::set<std::string> out;
  const std::regex option_line("^ +(-[-a-z]+)(, (--[a-z-]+))?");
  std::istringstream lines(help);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_search(line, m, option_line)) {
      out.insert(m[1].str());
      if (m[3].matched) out.insert(m[3].str());
    }
  }
  return out;
}

bool mentions_bold(const std::string& page, const std::string& word) {
  return page.find("*" + word + "*") != std::string::npos;
}

}  // namespace

TEST_CASE("vigil.yaml(5) describes every config key the loader accepts, and no other") {
  const std::string page = read_text("packaging/man/vigil.yaml.5.scd");
  const vigil::config::KnownKeys known = vigil::config::known_keys();

  const std::string supervisor = section(page, "SUPERVISOR SECTION");
  const std::string jobs = section(page, "JOBS SECTION");

  const std::string backoff = entry_body(jobs, "backoff");

  struct Table {
    const std::vector<std::string>& keys;  // what the loader accepts there
    std::string in_config;                 // where "there" is, in a config file
    std::string text;                      // the man page text it is documented in
    std::string where;                     // where that text is, in the man page
    int depth;                             // the indentation of its `*key* (type)` lines
  };
  const std::vector<Table> tables = {
      {known.supervisor, "supervisor:", supervisor, "SUPERVISOR SECTION", 0},
      {known.job, "a job", jobs, "JOBS SECTION", 0},
      {known.backoff, "a job's backoff:", backoff, "JOBS SECTION, under *backoff*", 1},
  };
  for (const Table& t : tables) {
    REQUIRE(!t.keys.empty());
    const std::set<std::string> documented = key_terms(t.text, t.depth);
    for (const std::string& key : t.keys) {
      INFO("the config loader accepts '" << key << "' in " << t.in_config
                                         << ", but vigil.yaml(5) has no '*" << key
                                         << "* (type)' entry in " << t.where
                                         << ": describe it in packaging/man/vigil.yaml.5.scd");
      CHECK(documented.count(key) == 1);
    }
    for (const std::string& key : documented) {
      INFO("vigil.yaml(5) describes '" << key << "' in " << t.where
                                       << ", but the config loader does not accept it in "
                                       << t.in_config);
      CHECK(contains(t.keys, key));
    }
  }

  // The top-level keys, and those an included file may hold.
  const std::string description = section(page, "DESCRIPTION");
  REQUIRE(!known.main.empty());
  for (const std::string& key : known.main) {
    const std::string why = "not listed in vigil.yaml(5)'s DESCRIPTION";
    INFO("the config loader accepts the top-level key '" << key << "': " << why);
    CHECK(contains(term_lines(description), "*" + key + "*"));
  }
  const std::string includes = section(page, "INCLUDES");
  REQUIRE(!known.included.empty());
  for (const std::string& key : known.included) {
    const std::string why = "not said in vigil.yaml(5)'s INCLUDES";
    INFO("the config loader lets an included file hold '" << key << "': " << why);
    CHECK(mentions_bold(includes, key + ":"));
  }
  REQUIRE(!known.restart_policies.empty());
  for (const std::string& policy : known.restart_policies) {
    INFO("restart: " << policy << " is not described in vigil.yaml(5)");
    CHECK(mentions_bold(jobs, policy));
  }
}

TEST_CASE("vigilctl(1) describes every command with its usage, and every option") {
  const std::string page = read_text("packaging/man/vigilctl.1.scd");
  const std::vector<std::string> terms = term_lines(section(page, "COMMANDS"));

  std::vector<std::string> names = {"help"};  // `vigilctl help [COMMAND]`, not in the table
  for (const auto& cmd : vigil::ctl::ctl_commands()) {
    const std::string name(cmd.name);
    names.push_back(name);
    std::string found;
    for (const auto& t : terms) {
      if (first_word(plain(t)) == name) found = plain(t);
    }
    if (found.empty()) {
      const std::string why = "vigilctl(1)'s COMMANDS has no entry for it";
      FAIL_CHECK("vigilctl has the command '" << name << "' (ctl/args.cc), but " << why);
      continue;
    }
    const std::string why = "differs from its usage line in ctl/args.cc";
    INFO("the synopsis of '" << name << "' in vigilctl(1) " << why);
    CHECK(found == std::string(cmd.usage));
  }
  for (const auto& t : terms) {
    INFO("vigilctl(1) describes '" << first_word(plain(t))
                                   << "', which is not a command of ctl/args.cc");
    CHECK(contains(names, first_word(plain(t))));
  }

  std::set<std::string> options = help_options(vigil::ctl::help_text(""));
  for (const auto& cmd : vigil::ctl::ctl_commands()) {
    for (const auto& o : help_options(vigil::ctl::help_text(cmd.name))) options.insert(o);
  }
  CHECK(options.count("--socket") == 1);  // the help text still has the expected shape
  for (const auto& o : options) {
    INFO("vigilctl's help lists the option " << o << ", but vigilctl(1) does not mention *" << o
                                             << "*");
    CHECK(mentions_bold(page, o));
  }
}

TEST_CASE("vigild(8) describes every option and signal of vigild") {
  const std::string page = read_text("packaging/man/vigild.8.scd");
  const std::string main_cc = read_text("supervisor/main.cc");
  const std::string daemon_cc = read_text("supervisor/daemon.cc");

  const std::string options = section(page, "OPTIONS");
  std::set<std::string> accepted;
  const std::regex compare("== \"(-[-a-z]+)\"");
  for (auto it = std::sregex_iterator(main_cc.begin(), main_cc.end(), compare);
       it != std::sregex_iterator(); ++it) {
    // `--internal-...` options are vigild talking to itself, not for users.
    if ((*it)[1].str().rfind("--internal-", 0) != 0) accepted.insert((*it)[1].str());
  }
  CHECK(accepted.count("--check") == 1);  // the parser still has the expected shape
  for (const auto& o : accepted) {
    const std::string why = "vigild(8)'s OPTIONS does not describe *" + o + "*";
    INFO("vigild accepts " << o << " (supervisor/main.cc), but " << why);
    CHECK(mentions_bold(options, o));
  }

  const std::string signals = section(page, "SIGNALS");
  std::set<std::string> handled;
  const std::regex watch("watch\\((SIG[A-Z0-9]+)");
  for (auto it = std::sregex_iterator(daemon_cc.begin(), daemon_cc.end(), watch);
       it != std::sregex_iterator(); ++it) {
    if ((*it)[1].str() != "SIGCHLD") handled.insert((*it)[1].str());  // internal: reaping
  }
  CHECK(handled.count("SIGHUP") == 1);
  for (const auto& s : handled) {
    const std::string why = "vigild(8)'s SIGNALS does not describe it";
    INFO("vigild handles " << s << " (supervisor/daemon.cc), but " << why);
    CHECK(mentions_bold(signals, s));
  }
}
