{
  description = "nixflash: from an empty folder to embedded Rust firmware on a board, built reproducibly by Nix";

  #   nix run github:<owner>/nixflash -- new blinky --board uno
  #   nix build            nixflash itself, at ./result/bin/nixflash
  #   nix flake check      build it, run its offline tests, clippy and rustfmt
  #   nix develop          a shell with cargo, clippy, rustfmt and rust-analyzer
  #
  # flake.lock pins crane to ipetkov/crane 2c71e19 (2026-08-03) and nixpkgs to NixOS/nixpkgs
  # 104240a (nixpkgs-unstable, 2026-08-03), the commit that crane's own test/flake.lock at that
  # crane commit is locked to. It was written offline: crane's narHash is that of the commit's
  # tree; nixpkgs' rev and narHash are copied from crane's lock. `nix flake update` refreshes both.
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixpkgs-unstable";
    crane.url = "github:ipetkov/crane";
  };

  outputs =
    {
      self,
      nixpkgs,
      crane,
    }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f system);

      perSystem =
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          inherit (pkgs) lib;
          craneLib = crane.mkLib pkgs;
          fs = lib.fileset;

          # crane's cleanCargoSource keeps only Rust and TOML files, but nixflash embeds boards/
          # and templates/ (Markdown, Jinja, lock files) with include_dir! at compile time: the
          # source is chosen file by file instead. Files that may be added later are optional.
          buildFiles = fs.unions [
            ./Cargo.toml
            ./Cargo.lock
            ./src
            ./boards
            ./templates
            (fs.maybeMissing ./build.rs)
            (fs.maybeMissing ./diagnoses.toml)
            (fs.maybeMissing ./README.md)
          ];
          src = fs.toSource {
            root = ./.;
            fileset = buildFiles;
          };
          # Tests, examples and benches are only in the checks' source, so editing a test does
          # not rebuild the package.
          srcWithTests = fs.toSource {
            root = ./.;
            fileset = fs.unions [
              buildFiles
              (fs.maybeMissing ./tests)
              (fs.maybeMissing ./examples)
              (fs.maybeMissing ./benches)
            ];
          };

          commonArgs = {
            inherit src;
            strictDeps = true;
          };

          # Dependencies build in a derivation of their own (with their dev-dependencies), shared
          # by the package and every check.
          cargoArtifacts = craneLib.buildDepsOnly commonArgs;

          nixflash = craneLib.buildPackage (
            commonArgs
            // {
              inherit cargoArtifacts;
              # The tests run in checks.nixflash-test, with the filter explained there.
              doCheck = false;
              nativeBuildInputs = [ pkgs.makeWrapper ];
              # `nixflash new` runs git (a flake only sees files git tracks): a git of the user's
              # comes first, this one is there for machines that have none.
              postInstall = ''
                wrapProgram $out/bin/nixflash --suffix PATH : ${lib.makeBinPath [ pkgs.git ]}
              '';
              meta = {
                description = "From an empty folder to embedded Rust firmware on a board, built reproducibly by Nix";
                mainProgram = "nixflash";
                license = with lib.licenses; [
                  mit
                  asl20
                ];
              };
            }
          );

          # The integration tests (one binary, tests/it) whose modules need no network, no Nix, no
          # firmware tools and no serial hardware, so they can run in the build sandbox: `new`,
          # `new_log`, `init` and `cli` need git, cargo, bash and ptys. A test in them that needs more (the
          # real compiler) says SKIPPED there, as CI is not set in the sandbox.
          offlineModules = [
            "new::"
            "new_log::"
            "init::"
            "cli::"
            "layout::"
          ];
          testArgs = {
            inherit cargoArtifacts;
            src = srcWithTests;
            # `nixflash new` and `init` (run by the tests) use git; `init`'s tests run `cargo new`.
            nativeCheckInputs = [ pkgs.git ];
            # insta: fail on a changed snapshot, never rewrite one in the sandbox.
            INSTA_UPDATE = "no";
          };
        in
        {
          packages = {
            default = nixflash;
            inherit nixflash;
          };

          checks = {
            inherit nixflash;

            nixflash-clippy = craneLib.cargoClippy (
              commonArgs
              // {
                inherit cargoArtifacts;
                src = srcWithTests;
                cargoClippyExtraArgs = "--all-targets -- -D warnings";
              }
            );

            nixflash-fmt = craneLib.cargoFmt { src = srcWithTests; };

            # Unit tests.
            nixflash-test = craneLib.cargoTest (
              commonArgs
              // testArgs
              // {
                cargoTestExtraArgs = "--lib --bins";
              }
            );

            # The offline integration tests listed above.
            nixflash-test-offline = craneLib.cargoTest (
              commonArgs
              // testArgs
              // {
                cargoTestExtraArgs = "--test it -- ${lib.concatStringsSep " " offlineModules}";
              }
            );
          };

          devShells.default = craneLib.devShell {
            # The checks' inputs: cargo, clippy, rustfmt, git.
            checks = self.checks.${system};
            packages = [ pkgs.rust-analyzer ];
          };
        };

      all = forAllSystems perSystem;
    in
    {
      packages = builtins.mapAttrs (_: s: s.packages) all;
      checks = builtins.mapAttrs (_: s: s.checks) all;
      devShells = builtins.mapAttrs (_: s: s.devShells) all;
    };
}
