from connectors.fmp.cli import main

main()
