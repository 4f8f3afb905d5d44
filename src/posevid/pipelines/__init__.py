"""posevid.pipelines"""
